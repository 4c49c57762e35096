"""A crash, a hang or a hostile file costs one item, never the batch or the caller.

Workers are real processes (`python -m pipeline.audio.worker`), so the worker functions below
live at module level (the children import them by name) and import Essentia only when they
need it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.audio.isolation import CRASH, EXCEPTION, TIMEOUT, IsolatedPool, PoolError

SR = 44100


def misbehave(item: str) -> dict:
    """A stand-in for a native decoder: some items crash it, hang it or make it raise."""
    if item == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if item == "null-deref":
        ctypes.string_at(0)
    if item == "hang":
        time.sleep(3600)
    if item == "raise":
        raise ValueError("bad item")
    if item == "unpicklable":
        return {"ok": True, "value": lambda: None}
    if item == "hog":
        bytearray(3 * 1024**3)
    return {"ok": True, "item": item, "pid": os.getpid()}


def loaded_modules(item: str) -> dict:
    """What a worker process has imported, and what it was started as."""
    import sys

    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"airflow", "sqlalchemy", "pymongo"})
    return {"ok": True, "heavy": heavy, "main": sys.modules["__main__"].__spec__.name}


def note_start() -> None:
    time.sleep(0.2)


def broken_start() -> None:
    raise RuntimeError("no codecs here")


def dying_start() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def analyse_or_misbehave(path: str) -> dict:
    """The real analysis, except for two file names standing for a decoder crash and hang."""
    from pipeline.audio.analyse import analyse

    name = Path(path).name
    if name == "decoder-crash.flac":
        ctypes.string_at(0)
    if name == "decoder-hang.flac":
        time.sleep(3600)
    return analyse(path)


def _warm_up() -> None:
    from pipeline.audio.analyse import warm_up

    warm_up()


@pytest.fixture(scope="module")
def pool():
    with IsolatedPool(misbehave, workers=2, timeout_s=3.0, initializer=note_start) as pool:
        yield pool


def test_segfault_costs_exactly_one_item(pool):
    replaced = pool.replaced
    results = pool.map(["a", "segv", "b", "null-deref", "c"])
    assert [r["ok"] for r in results] == [True, False, True, False, True]
    assert [r.get("item") for r in results[::2]] == ["a", "b", "c"]
    for failed in (results[1], results[3]):
        assert failed["failure"] == CRASH
        assert failed["reason"] == "AUDIO_UNDECODABLE"
        assert "SIGSEGV" in failed["message"]
    assert pool.replaced == replaced + 2


def test_hang_costs_exactly_one_item_and_only_its_timeout(pool):
    started = time.monotonic()
    results = pool.map(["a", "hang", "b", "c", "d"])
    elapsed = time.monotonic() - started
    assert [r["ok"] for r in results] == [True, False, True, True, True]
    assert results[1]["failure"] == TIMEOUT and "3 s" in results[1]["message"]
    assert elapsed < 3.0 + 15.0


def test_exceptions_and_unsendable_results_are_reported_without_replacing_the_worker(pool):
    replaced = pool.replaced
    results = pool.map(["raise", "unpicklable", "a"])
    assert results[0]["failure"] == EXCEPTION and "ValueError: bad item" in results[0]["message"]
    assert results[1]["failure"] == EXCEPTION and "could not be sent" in results[1]["message"]
    assert results[2]["ok"]
    assert pool.replaced == replaced


def test_workers_are_reused_and_warmed_once(pool):
    warmups = len(pool.warmup_seconds)
    results = pool.map([str(i) for i in range(20)])
    assert [r["item"] for r in results] == [str(i) for i in range(20)]
    assert len({r["pid"] for r in results}) <= 2
    assert len(pool.warmup_seconds) == warmups
    assert all(s >= 0.2 for s in pool.warmup_seconds)


def test_stopping_early_leaves_no_stale_results(pool):
    stream = pool.imap_unordered(["hang", "a", "b"])
    first = next(stream)
    assert first[1]["ok"]
    stream.close()
    assert [r["item"] for r in pool.map(["x", "y"])] == ["x", "y"]


def test_memory_limit_turns_a_runaway_allocation_into_one_failed_item():
    with IsolatedPool(misbehave, workers=1, memory_limit_bytes=1536 * 1024**2) as pool:
        results = pool.map(["hog", "a"])
    assert results[0]["failure"] == EXCEPTION and "MemoryError" in results[0]["message"]
    assert results[1]["ok"]


@pytest.mark.parametrize(
    "initializer,match", [(broken_start, "no codecs"), (dying_start, "SIGKILL")]
)
def test_a_worker_that_cannot_start_raises_instead_of_failing_every_item(initializer, match):
    with IsolatedPool(misbehave, workers=1, initializer=initializer) as pool:
        with pytest.raises(PoolError, match=match):
            pool.map(["a"])


PARENT_SCRIPT = """
import sys
if __name__ != "__main__":
    raise SystemExit("the parent's main script ran again in a worker")
import airflow  # the parent is an Airflow task: heavy, and it must not reach the workers
from pipeline.audio.isolation import IsolatedPool
from tests.integration.test_isolation import loaded_modules
with IsolatedPool(loaded_modules, workers=2) as pool:
    print(repr(pool.map(["a", "b", "c"])))
"""


def test_workers_never_rerun_the_parent_script_nor_import_what_it_imported(tmp_path):
    """Under an Airflow task the parent's main script is `bin/airflow`; multiprocessing's spawn
    re-ran it in every worker, which failed in the task's environment."""
    import subprocess
    import sys

    script = tmp_path / "airflow-like"
    script.write_text(PARENT_SCRIPT)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = eval(run.stdout.strip().splitlines()[-1])  # noqa: S307 - our own repr of dicts
    assert [r["ok"] for r in results] == [True, True, True]
    assert {r["main"] for r in results} == {"pipeline.audio.worker"}
    assert {tuple(r["heavy"]) for r in results} == {()}
    assert "ran again" not in run.stderr


# --- the real analysis over broken files -------------------------------------------------------


def _wav_header(channels: int, rate: int, data_bytes: int, bits: int = 16) -> bytes:
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * align, align, bits)
    return (
        b"RIFF"
        + struct.pack("<I", min(36 + data_bytes, 0xFFFFFFFF))
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def _flac_declaring(data: bytes, total_samples: int) -> bytes:
    """A FLAC file whose STREAMINFO claims `total_samples`; everything else unchanged."""
    start = 8 + 10
    packed = int.from_bytes(data[start : start + 8], "big")
    packed = (packed & ~((1 << 36) - 1)) | total_samples
    return data[:start] + packed.to_bytes(8, "big") + data[start + 8 :]


@pytest.fixture(scope="module")
def broken_files(tmp_path_factory):
    from corpus_demo import synth

    folder = tmp_path_factory.mktemp("broken")
    music = synth.chord_progression("A", "minor", 120, 3.0)
    good = synth.write_audio(music, SR, folder / "good.flac", "flac").read_bytes()
    noise = np.random.default_rng(0).integers(0, 256, 64_000, dtype=np.uint8).tobytes()
    files = {
        "decoder-hang.flac": good,
        "good.flac": good,
        "flac-named.mp3": good,
        "truncated.flac": good[: len(good) // 2],
        "zero-bytes.wav": b"",
        "html-named.wav": b"<!doctype html><html><body>404 Not Found</body></html>\n" * 20,
        "random.mp3": noise,
        "absurd-length.wav": _wav_header(2, SR, 0xFFFFFFF0) + bytes(4096),
        "absurd-length.flac": _flac_declaring(good, (1 << 36) - 1),
        "many-channels.wav": _wav_header(4096, SR, 4096 * 2 * 10) + bytes(4096 * 2 * 10),
        "absurd-rate.wav": _wav_header(2, 0xFFFFFFF0 // 4, 4000) + bytes(4000),
        "flac-header-garbage.flac": good[:8192] + noise,
        "ogg-header-garbage.ogg": synth.write_audio(
            music, SR, folder / "o.ogg", "ogg"
        ).read_bytes()[:4096]
        + noise,
        "decoder-crash.flac": good,
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder, list(files)  # the hang first, so its timeout overlaps the other items


EXPECTED = {
    "good.flac": (None, "flac"),
    "flac-named.mp3": (None, "flac"),
    "truncated.flac": ("AUDIO_UNDECODABLE", "truncated"),
    "zero-bytes.wav": ("AUDIO_UNDECODABLE", "empty file"),
    "html-named.wav": ("AUDIO_UNDECODABLE", "not a known audio format"),
    "random.mp3": ("AUDIO_UNDECODABLE", "not a known audio format"),
    "absurd-length.wav": ("AUDIO_TOO_LONG", "header declares"),
    "absurd-length.flac": ("AUDIO_TOO_LONG", "header declares"),
    "many-channels.wav": ("AUDIO_UNDECODABLE", "4096 channels"),
    "absurd-rate.wav": ("AUDIO_SAMPLE_RATE", "Hz > maximum"),
    "flac-header-garbage.flac": ("AUDIO_UNDECODABLE", ""),
    "ogg-header-garbage.ogg": ("AUDIO_UNDECODABLE", ""),
    "decoder-crash.flac": ("AUDIO_UNDECODABLE", "SIGSEGV"),
    "decoder-hang.flac": ("AUDIO_UNDECODABLE", "no result within"),
}


def test_broken_file_matrix_completes_with_one_reason_per_file(broken_files):
    folder, names = broken_files
    with IsolatedPool(analyse_or_misbehave, workers=2, timeout_s=6.0, initializer=_warm_up) as pool:
        results = dict(zip(names, pool.map([str(folder / n) for n in names]), strict=True))
        replaced = pool.replaced
    assert set(results) == set(EXPECTED)
    for name, (reason, fragment) in EXPECTED.items():
        result = results[name]
        assert result["reason"] == reason, (name, result["message"])
        assert fragment in (result["message"] if reason else result["format"]), name
        assert result["message"] or reason is None, name
        assert result["ok"] is (reason is None), name
    assert results["decoder-crash.flac"]["failure"] == CRASH
    assert results["decoder-hang.flac"]["failure"] == TIMEOUT
    assert replaced == 2
    good = results["good.flac"]
    assert good["descriptors"]["key"] == "A" and good["fingerprint"]
    assert set(good["quality"]) >= {"silence_ratio", "clipped_ratio", "bandwidth_hz", "dc_offset"}
