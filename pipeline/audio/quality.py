"""The audio quality gate: measures of the decoded signal, then a verdict against the policy.

`measure` is numpy (and scipy's FFT) on the decoded signal, no Essentia, and always reports
every measure, so a rejected item still shows by how much it missed and a threshold can be tuned
from recorded numbers without decoding again. `gate` turns measures into reason codes. Levels
are dBFS with full scale = sample magnitude 1.0 (RMS is not sine-referenced: a full-scale sine
has an RMS of -3.01 dBFS).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from pipeline.audio.decode import DecodedAudio
from pipeline.reasons import Reason

# One framing serves the silence ratio and the bandwidth: 4096 samples (93 ms at 44.1 kHz).
FRAME = 4096
DEFAULT_SILENCE_DBFS = -60.0
# Clipping shows as flat tops: runs of consecutive samples pinned at the channel's own peak.
# Clipped-then-attenuated audio is caught too, and a loud master whose peaks touch full scale
# one sample at a time is not. Decoded 16- and 24-bit flat tops are exactly equal in float32,
# so the tolerance only absorbs float rounding: a full-scale sine stays within 1e-5 of its crest
# for 63/f samples, so only sines under ~21 Hz make runs of 3 (0.28% of samples at most).
CLIP_MIN_RUN = 3
CLIP_TOLERANCE = 1e-5
# Bandwidth: highest frequency whose long-term power is within BANDWIDTH_RANGE_DB of the
# spectrum's peak. 16-bit dither sits >110 dB under a musical peak per bin, and resampler
# stop bands and MP3 low-pass filters lie below -90 dB, so 80 dB separates content from none.
BANDWIDTH_RANGE_DB = 80.0
BANDWIDTH_MAX_FRAMES = 2000
BANDWIDTH_BLOCK = 128

# Decoded float audio may exceed full scale a little (inter-sample overs, hot masters); far
# beyond it, samples are broken data (a float WAV of values near 1e30 is finite but no audio).
OUT_OF_RANGE_DBFS = 24.0
OUT_OF_RANGE_AMPLITUDE = 10 ** (OUT_OF_RANGE_DBFS / 20)

MEASURES = (
    "duration_s",
    "sample_rate_hz",
    "channels",
    "peak_dbfs",
    "rms_dbfs",
    "silence_ratio",
    "silence_threshold_dbfs",
    "clipped_ratio",
    "bandwidth_hz",
    "dc_offset",
)


def measure(audio: DecodedAudio, silence_dbfs: float = DEFAULT_SILENCE_DBFS) -> dict:
    """Every quality measure of `audio` as plain Python values (None where undefined).

    `silence_dbfs` is the policy's `silence_threshold_dbfs`; it is recorded with the measures
    because the silence ratio means nothing without it."""
    channels = np.asarray(audio.samples[:, : max(1, min(audio.channels, 2))], dtype=np.float32)
    peak = float(np.max(np.abs(channels))) if channels.size else 0.0
    if peak > OUT_OF_RANGE_AMPLITUDE:
        channels = channels.astype(np.float64)  # squares of ~1e30 overflow float32
    frames, tail = _frames(channels)
    energy = _energy(frames, tail)
    rms = np.sqrt(energy / _lengths(len(frames), len(tail))[:, None])
    loud = rms.max(axis=1) >= 10 ** (silence_dbfs / 20)
    size = channels.size
    return {
        "duration_s": float(audio.duration_s),
        "sample_rate_hz": float(audio.sample_rate),
        "channels": int(audio.channels),
        "peak_dbfs": _db(peak),
        "rms_dbfs": _db(math.sqrt(float(energy.sum()) / size) if size else 0.0),
        "silence_ratio": float(1.0 - loud.mean()) if loud.size else 1.0,
        "silence_threshold_dbfs": float(silence_dbfs),
        "clipped_ratio": _clipped_ratio(channels),
        "bandwidth_hz": _bandwidth_hz(frames, loud[: len(frames)], audio.sample_rate),
        "dc_offset": float(np.max(np.abs(np.einsum("sc->c", channels, dtype=np.float64))))
        / channels.shape[0]
        if size
        else 0.0,
    }


def gate(measures: Mapping, thresholds) -> list[tuple[Reason, str]]:
    """Reason codes with a message for every threshold the measures miss; empty means pass.

    `thresholds` is the policy's AudioThresholds or its dict form (missing keys take the
    policy defaults; unknown keys are an error, so a typo cannot silently disable a check).
    """
    from pipeline.licensing.policy import AudioThresholds

    if not isinstance(thresholds, AudioThresholds):
        thresholds = AudioThresholds.model_validate(dict(thresholds))
    t, m = thresholds, measures
    rate, bandwidth = m["sample_rate_hz"], m["bandwidth_hz"]
    checks = [
        (
            m["peak_dbfs"] is not None and m["peak_dbfs"] > OUT_OF_RANGE_DBFS,
            Reason.AUDIO_OUT_OF_RANGE,
            f"decoded samples peak at {m['peak_dbfs'] or 0:+.1f} dBFS, beyond "
            f"{OUT_OF_RANGE_DBFS:+g} dBFS: broken sample values",
        ),
        (
            m["duration_s"] < t.min_duration_s,
            Reason.AUDIO_TOO_SHORT,
            f"{m['duration_s']:.2f} s < {t.min_duration_s:g} s",
        ),
        (
            m["duration_s"] > t.max_duration_s,
            Reason.AUDIO_TOO_LONG,
            f"{m['duration_s']:.0f} s > maximum {t.max_duration_s:g} s",
        ),
        (
            rate < t.min_sample_rate_hz,
            Reason.AUDIO_SAMPLE_RATE,
            f"sample rate {rate:g} Hz < {t.min_sample_rate_hz} Hz",
        ),
        (
            bool(t.allowed_sample_rates_hz) and rate not in t.allowed_sample_rates_hz,
            Reason.AUDIO_SAMPLE_RATE,
            f"sample rate {rate:g} Hz is not an accepted rate",
        ),
        (
            m["silence_ratio"] > t.max_silence_ratio,
            Reason.AUDIO_SILENT,
            f"{m['silence_ratio']:.0%} below {m['silence_threshold_dbfs']:g} dBFS"
            f" > maximum {t.max_silence_ratio:.0%}",
        ),
        (
            m["clipped_ratio"] > t.max_clipped_ratio,
            Reason.AUDIO_CLIPPED,
            f"{m['clipped_ratio']:.2%} of samples clipped > maximum {t.max_clipped_ratio:.2%}",
        ),
        (
            bandwidth is not None and bandwidth < t.min_bandwidth_hz,
            Reason.AUDIO_LOW_BANDWIDTH,
            f"no content above {bandwidth or 0:.0f} Hz < minimum {t.min_bandwidth_hz:g} Hz",
        ),
    ]
    return [(reason, message) for failed, reason, message in checks if failed]


def _db(amplitude: float) -> float | None:
    return 20 * math.log10(amplitude) if amplitude > 0 else None


def _frames(channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(full frames as a (frames, FRAME, channels) view, the partial tail frame's samples)."""
    full = channels.shape[0] // FRAME
    frames = channels[: full * FRAME].reshape(full, FRAME, channels.shape[1])
    return frames, channels[full * FRAME :]


def _energy(frames: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """(frames [+ tail], channels) sum of squares, without a float64 copy of the signal."""
    energy = np.einsum("fsc,fsc->fc", frames, frames, dtype=np.float64)
    if len(tail):
        energy = np.vstack([energy, np.einsum("sc,sc->c", tail, tail, dtype=np.float64)])
    return energy


def _lengths(full: int, tail: int) -> np.ndarray:
    return np.array([FRAME] * full + ([tail] if tail else []), dtype=np.float64)


def _clipped_ratio(channels: np.ndarray) -> float:
    """Share of samples that sit in flat-topped runs at the channel's peak."""
    if channels.size == 0:
        return 0.0
    clipped = 0
    for channel in channels.T:
        magnitude = np.abs(channel)
        peak = float(magnitude.max())
        if peak == 0.0:
            continue
        pinned = np.concatenate(([0], magnitude >= peak * (1 - CLIP_TOLERANCE), [0])).astype(
            np.int8
        )
        edges = np.diff(pinned)
        runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        clipped += int(runs[runs >= CLIP_MIN_RUN].sum())
    return clipped / channels.size


def _bandwidth_hz(frames: np.ndarray, loud: np.ndarray, sample_rate: float) -> float | None:
    """Highest frequency with content, from the mean power spectrum of non-silent frames.

    Lossy transcodes and upsampled files have a cliff where the original band ended and almost
    nothing above it; real recordings keep some noise up to their own Nyquist.
    """
    chosen = np.flatnonzero(loud)
    if chosen.size == 0:
        return None
    if chosen.size > BANDWIDTH_MAX_FRAMES:
        chosen = chosen[np.linspace(0, chosen.size - 1, BANDWIDTH_MAX_FRAMES).astype(int)]
    from scipy.fft import rfft

    window = np.hanning(FRAME).astype(np.float32)[None, :, None]
    power = np.zeros(FRAME // 2 + 1)
    for start in range(0, chosen.size, BANDWIDTH_BLOCK):
        block = frames[chosen[start : start + BANDWIDTH_BLOCK]] * window
        power += np.sum(np.abs(rfft(block, axis=1)) ** 2, axis=(0, 2))
    power[0] = 0.0
    peak = power.max()
    if peak <= 0:
        return None
    above = np.flatnonzero(power >= peak * 10 ** (-BANDWIDTH_RANGE_DB / 10))
    return float(above[-1] * sample_rate / FRAME)
