"""Descriptor-stage throughput against the bar: bare Essentia MusicExtractor in a process pool.

Both run over the same synthesised FLAC files, in the same run, with one worker per core, and
report audio-seconds processed per wall-second per core (x realtime per core). Worker warm-up
is timed separately and left out of the throughput on both sides: the analysis pool is warmed
before the clock starts, and MusicExtractor workers import Essentia in their initializer.

    .venv/bin/python bench/descriptors_bench.py [--tracks 10] [--seconds 30] [--workers N]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

KEYS = [("A", "minor"), ("E", "major"), ("C", "major"), ("F#", "minor"), ("Bb", "major")]


def _import_essentia(threads: int | None) -> None:
    """MusicExtractor workers get the same native-thread limit as the analysis pool."""
    if threads:
        from pipeline.audio.isolation import limit_native_threads

        limit_native_threads(threads)
    import essentia.standard  # noqa: F401


def music_extractor(path: str) -> float:
    """Bare MusicExtractor, as a user would call it per file; returns its wall time."""
    import essentia.standard as es

    started = time.perf_counter()
    stats = ["mean", "stdev"]
    es.MusicExtractor(lowlevelStats=stats, rhythmStats=stats, tonalStats=stats)(path)
    return time.perf_counter() - started


def synthesise(folder: Path, tracks: int, seconds: float) -> list[str]:
    from corpus_demo import synth

    paths = []
    for i in range(tracks):
        key, scale = KEYS[i % len(KEYS)]
        signal = synth.chord_progression(key, scale, 80 + 7 * i, seconds, seed=i)
        paths.append(str(synth.write_audio(signal, 44100, folder / f"track{i:02}.flac", "flac")))
    return paths


def music_extractor_pool(workers: int, threads: int | None):
    context = multiprocessing.get_context("spawn")
    return concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_import_essentia, initargs=(threads,)
    )


def timed(run) -> tuple[float, list]:
    started = time.perf_counter()
    results = run()
    return time.perf_counter() - started, results


def bench_pools(paths: list[str], workers: int, rounds: int) -> dict:
    """Both pools warm, then alternating timed rounds: a burst of load from elsewhere on the
    machine then hits both sides alike, and the best round of each is compared."""
    from pipeline.audio.analyse import analysis_pool

    ours_walls, bar_walls, bar_calls = [], [], []
    with analysis_pool(workers=workers) as ours, music_extractor_pool(workers, 1) as bar:
        warm, _ = timed(lambda: ours.map(paths[:workers]))
        list(bar.map(_start_worker, range(workers)))
        for _ in range(rounds):
            wall, results = timed(lambda: ours.map(paths))
            ours_walls.append(wall)
            wall, per_call = timed(lambda: list(bar.map(music_extractor, paths)))
            bar_walls.append(wall)
            bar_calls.extend(per_call)
        warmups = list(ours.warmup_seconds)
    failed = [r["message"] for r in results if not r["ok"]]
    if failed:
        raise SystemExit(f"analysis failed: {failed}")
    stages = {
        stage: statistics.mean(r["seconds"][stage] for r in results)
        for stage in ("decode", "quality", "descriptors", "fingerprint", "total")
    }
    return {
        "ours": ours_walls,
        "bar": bar_walls,
        "bar_per_call": statistics.median(bar_calls),
        "warm": warm,
        "warmups": warmups,
        "stages": stages,
    }


def bench_default_threads(paths: list[str], workers: int) -> float:
    """MusicExtractor as most people run it: native libraries left to start their threads."""
    with music_extractor_pool(workers, None) as pool:
        list(pool.map(_start_worker, range(workers)))
        wall, _ = timed(lambda: list(pool.map(music_extractor, paths)))
    return wall


def _start_worker(_: int) -> None:
    time.sleep(0.5)


def bench_compute_in_process(paths: list[str]) -> dict:
    """The descriptor set alone (decode + compute), one core, after a warm-up call."""
    from pipeline.audio.decode import decode
    from pipeline.audio.isolation import limit_native_threads
    from pipeline.descriptors.essentia_set import compute

    limit_native_threads(1)
    compute(decode(paths[0]))
    decode_s = compute_s = 0.0
    for path in paths:
        started = time.perf_counter()
        audio = decode(path)
        decoded = time.perf_counter()
        compute(audio)
        decode_s += decoded - started
        compute_s += time.perf_counter() - decoded
    return {"decode": decode_s, "compute": compute_s}


def main() -> None:
    from pipeline.audio.isolation import default_workers

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    audio_s = args.tracks * args.seconds
    with tempfile.TemporaryDirectory(prefix="descriptors-bench-") as folder:
        paths = synthesise(Path(folder), args.tracks, args.seconds)
        pools = bench_pools(paths, args.workers, args.rounds)
        default_wall = bench_default_threads(paths, args.workers)
        alone = bench_compute_in_process(paths)

    def per_core(wall: float) -> str:
        return f"{wall:.1f} s wall, {audio_s / wall / args.workers:.1f}x realtime per core"

    ours, bar = min(pools["ours"]), min(pools["bar"])
    rounds = " / ".join(
        f"{o:.1f}:{b:.1f}" for o, b in zip(pools["ours"], pools["bar"], strict=True)
    )
    print(
        f"{args.tracks} tracks x {args.seconds:g} s = {audio_s:g} s audio, {args.workers} workers"
    )
    print(f"analysis pool (sniff+decode+quality+descriptors+fingerprint): {per_core(ours)}")
    print(
        f"bare MusicExtractor, process pool, 1 native thread per worker: {per_core(bar)}"
        f" ({pools['bar_per_call']:.2f} s per call)"
    )
    print(f"ratio (MusicExtractor wall / analysis wall, best rounds): {bar / ours:.2f}x")
    print(f"rounds, analysis:MusicExtractor seconds: {rounds}")
    print(f"bare MusicExtractor, native threads left at default: {per_core(default_wall)}")
    stages = ", ".join(f"{k} {v:.3f}" for k, v in pools["stages"].items())
    print(f"analysis per item, mean seconds (last round): {stages}")
    warmups = ", ".join(f"{s:.1f} s" for s in pools["warmups"])
    print(f"worker warm-up: {warmups} (pool ready + first items: {pools['warm']:.1f} s)")
    print(
        f"descriptor set alone, one core: {audio_s / alone['compute']:.1f}x realtime"
        f" ({alone['compute'] / args.tracks:.2f} s per track; decode {alone['decode']:.2f} s total)"
    )


if __name__ == "__main__":
    main()
