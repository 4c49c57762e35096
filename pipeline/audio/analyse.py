"""One delivered file in, one plain verdict dict out: the function the isolation workers run.

The order is the point. Sniffing and header checks come first: they are cheap, and they keep a
decoder bomb (hours of audio or thousands of channels declared in a few kilobytes) away from
the native decoder. Then one decode, the quality measures (always all of them), and only for
audio that passed, descriptors and the fingerprint on that same decoded signal.

Result keys: ok, reason (first reason code or None), reasons (all), message, path, format
(sniffed), declared (header facts), codec, quality (every measure), descriptor_set,
descriptors, fingerprint, seconds (per stage). Everything is plain and picklable.
"""

from __future__ import annotations

import dataclasses
import functools
import mmap
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from pipeline.audio import quality
from pipeline.audio.decode import AudioUndecodable, decode
from pipeline.audio.fingerprint import fingerprint
from pipeline.audio.isolation import IsolatedPool
from pipeline.audio.sniff import declared, sniff
from pipeline.descriptors.essentia_set import DESCRIPTOR_SET_VERSION, compute
from pipeline.licensing.policy import AudioThresholds
from pipeline.reasons import Reason

# Decode yields mono or stereo only; anything more is refused before it is decoded.
MAX_CHANNELS = 2
# Measured here: one hour of stereo 44.1 kHz (the default maximum) takes a warm worker ~2 min
# (decode 10 s, quality 8 s, descriptors 95 s, fingerprint 7 s) and peaks at 3.9 GB resident.
DEFAULT_TIMEOUT_S = 300.0
# Twice that peak: a bomb that slips past the header checks dies on this limit (MemoryError or a
# crash, one failed item) instead of exhausting the host.
DEFAULT_MEMORY_LIMIT_BYTES = 8 * 1024**3


def analyse(path: str, thresholds: Mapping | AudioThresholds | None = None) -> dict:
    """The verdict for one file; never raises for anything the file itself can cause."""
    limits = _thresholds(thresholds)
    clock = _Clock()
    result: dict = {
        "ok": False,
        "reason": None,
        "reasons": [],
        "message": "",
        "path": str(path),
        "format": None,
        "declared": None,
        "codec": None,
        "quality": None,
        "descriptor_set": DESCRIPTOR_SET_VERSION,
        "descriptors": None,
        "fingerprint": None,
        "seconds": clock.seconds,
    }

    def reject(problems: list[tuple[Reason, str]]) -> dict:
        result["reason"] = problems[0][0].value
        result["reasons"] = [reason.value for reason, _ in problems]
        result["message"] = "; ".join(f"{reason}: {message}" for reason, message in problems)
        clock.stop("total")
        return result

    problem = _inspect(Path(path), limits, result)
    clock.stop("sniff")
    if problem is not None:
        return reject([problem])
    try:
        audio = decode(path)
    except AudioUndecodable as exc:
        return reject([(Reason.AUDIO_UNDECODABLE, exc.reason)])
    clock.stop("decode")
    result["codec"] = audio.codec
    result["quality"] = quality.measure(audio, limits.silence_threshold_dbfs)
    problems = quality.gate(result["quality"], limits)
    clock.stop("quality")
    if problems:
        return reject(problems)
    try:
        result["descriptors"] = compute(audio)
    except RuntimeError as exc:
        return reject([(Reason.AUDIO_UNDECODABLE, f"descriptor extraction failed: {exc}")])
    clock.stop("descriptors")
    try:
        result["fingerprint"] = fingerprint(audio)
    except RuntimeError as exc:
        result["message"] = f"no fingerprint, so duplicates of this item go unseen: {exc}"
    clock.stop("fingerprint")
    result["ok"] = True
    clock.stop("total")
    return result


def _thresholds(thresholds) -> AudioThresholds:
    if isinstance(thresholds, AudioThresholds):
        return thresholds
    return AudioThresholds.model_validate(dict(thresholds or {}))


def _inspect(path: Path, limits: AudioThresholds, result: dict) -> tuple[Reason, str] | None:
    """Format and header checks, reading only the pages of the file the parsers touch."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            return Reason.AUDIO_MISSING, "not a regular file"
    except FileNotFoundError:
        return Reason.AUDIO_MISSING, "no such file"
    if size == 0:
        return Reason.AUDIO_UNDECODABLE, "empty file"
    if size > limits.max_file_bytes:
        return Reason.AUDIO_UNDECODABLE, f"{size} bytes > maximum {limits.max_file_bytes}"
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        result["format"] = sniff(data)
        if result["format"] is None:
            return Reason.AUDIO_UNDECODABLE, f"not a known audio format (starts {data[:8]!r})"
        facts = declared(data)
    result["declared"] = dataclasses.asdict(facts)
    return _bomb_check(facts, limits)


def _bomb_check(facts, limits: AudioThresholds) -> tuple[Reason, str] | None:
    if facts.channels is not None and not 1 <= facts.channels <= MAX_CHANNELS:
        return Reason.AUDIO_UNDECODABLE, f"header declares {facts.channels} channels"
    if facts.sample_rate is not None and not facts.sample_rate > 0:
        return Reason.AUDIO_UNDECODABLE, f"header declares a sample rate of {facts.sample_rate}"
    if facts.sample_rate is not None and facts.sample_rate > limits.max_sample_rate_hz:
        rate, limit = facts.sample_rate, limits.max_sample_rate_hz
        return Reason.AUDIO_SAMPLE_RATE, f"header declares {rate:g} Hz > maximum {limit:g} Hz"
    if facts.duration_s is not None and facts.duration_s > limits.max_duration_s:
        seconds, limit = facts.duration_s, limits.max_duration_s
        return Reason.AUDIO_TOO_LONG, f"header declares {seconds:.0f} s > maximum {limit:g} s"
    return None


class _Clock:
    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._start = self._last = time.perf_counter()

    def stop(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(now - (self._start if stage == "total" else self._last), 4)
        self._last = now


def warm_up() -> None:
    """Pay a worker's one-off costs (imports, librosa's first call) on a known-good file."""
    import numpy as np
    import soundfile

    sr = 44100
    t = np.arange(4 * sr) / sr
    pulse = np.exp(-(t % 0.5) / 0.1)  # an A minor triad struck on every beat at 120 BPM
    chord = sum(np.sin(2 * np.pi * hz * t) for hz in (220.0, 261.63, 329.63)) * pulse
    chord += 0.002 * np.random.default_rng(0).standard_normal(t.size)
    signal = (0.25 * chord / np.max(np.abs(chord))).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="warm-up-") as folder:
        path = Path(folder) / "warm-up.wav"
        soundfile.write(str(path), np.stack([signal, signal], axis=1), sr)
        result = analyse(str(path))
    if not result["ok"]:
        raise RuntimeError(f"warm-up analysis failed: {result['message']}")


def analysis_pool(
    thresholds: Mapping | AudioThresholds | None = None,
    *,
    workers: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_limit_bytes: int | None = DEFAULT_MEMORY_LIMIT_BYTES,
) -> IsolatedPool:
    """A pool whose `map(paths)` returns one `analyse` result per path, crash or not."""
    limits = _thresholds(thresholds).model_dump()
    return IsolatedPool(
        functools.partial(analyse, thresholds=limits),
        workers=workers,
        timeout_s=timeout_s,
        initializer=warm_up,
        failure_reason=Reason.AUDIO_UNDECODABLE.value,
        memory_limit_bytes=memory_limit_bytes,
    )
