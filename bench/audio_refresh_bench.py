"""The whole refresh over audio against the script a user would write instead.

The script: Essentia's `MusicExtractor` over every file in a process pool (one worker per
core, as `corpus` uses), a few of its results per file to Parquet. The refresh: `corpus
refresh` over a manifest delivery of the same files, every licence admitted (read,
validate, decide, fetch and checksum, decode, quality gate, descriptors, fingerprint,
dedup, shards with the audio, manifest, provenance). Both run as fresh processes, timed
from outside, over the same synthesised FLAC files in the same run; printed: audio-seconds
per wall-second of each and their ratio (above 1: the refresh is faster).

    .venv/bin/python bench/audio_refresh_bench.py [--tracks 12] [--seconds 60]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = str(Path(sys.executable).with_name("corpus"))
KEYS = [("A", "minor"), ("E", "major"), ("C", "major"), ("F#", "minor"), ("Bb", "major")]


def delivery(folder: Path, tracks: int, seconds: float) -> list[Path]:
    """`tracks` distinct synthesised recordings and a manifest admitting them all."""
    from corpus_demo import synth

    audio = folder / "audio"
    audio.mkdir(parents=True)
    paths, lines = [], []
    for i in range(tracks):
        key, scale = KEYS[i % len(KEYS)]
        signal = synth.chord_progression(key, scale, 80 + 7 * i, seconds, seed=i)
        path = synth.write_audio(signal, 44100, audio / f"track{i:02}.flac", "flac")
        paths.append(path)
        record = {
            "track_id": f"T{i:03d}",
            "title": f"Track {i}",
            "artists": [f"Artist {i}"],
            "audio": f"audio/{path.name}",
            "license": {"id": "CC0-1.0"},
        }
        lines.append(json.dumps(record))
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    partners = {"partners": [{"id": "bench", "name": "Bench", "location": str(folder)}]}
    (folder / "partners.yaml").write_text(json.dumps(partners))
    return paths


def extract(path: str) -> dict:
    import essentia.standard as es

    stats = ["mean", "stdev"]
    pool, _ = es.MusicExtractor(lowlevelStats=stats, rhythmStats=stats, tonalStats=stats)(path)
    return {
        "path": path,
        "bpm": float(pool["rhythm.bpm"]),
        "key": str(pool["tonal.key_edma.key"]),
        "scale": str(pool["tonal.key_edma.scale"]),
        "loudness": float(pool["lowlevel.loudness_ebu128.integrated"]),
    }


def baseline(files: list[str], out: str, workers: int) -> None:
    """The user's script: MusicExtractor in a process pool, results to Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        rows = list(pool.map(extract, files))
    pq.write_table(pa.Table.from_pylist(rows), out)


def timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    run = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(f"{command[:3]} failed:\n{run.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--baseline", nargs=2, metavar=("FILES_JSON", "OUT"))
    args = parser.parse_args()
    if args.baseline:
        baseline(json.loads(Path(args.baseline[0]).read_text()), args.baseline[1], _workers())
        return
    audio_s = args.tracks * args.seconds
    with tempfile.TemporaryDirectory(prefix="audio-refresh-bench-") as tmp:
        root = Path(tmp)
        paths = delivery(root / "delivery", args.tracks, args.seconds)
        files = root / "files.json"
        files.write_text(json.dumps([str(p) for p in paths]))
        env = {**os.environ, "CORPUS_HOME": str(root / "home")}
        env.pop("CORPUS_MONGO_URI", None)
        env.pop("CORPUS_STORE", None)
        subprocess.run([CORPUS, "services", "stop"], env=env, capture_output=True)
        script = [sys.executable, __file__, "--baseline", str(files), str(root / "out.parquet")]
        bar = timed(script, env)
        refresh = [CORPUS, "refresh", "--json", "--partners", str(root / "delivery/partners.yaml")]
        ours = timed(refresh, env)
        subprocess.run([CORPUS, "services", "stop"], env=env, capture_output=True)
    print(f"{args.tracks} tracks x {args.seconds:g} s = {audio_s:g} s audio, {_workers()} workers")
    print(f"MusicExtractor pool to Parquet: {bar:.1f} s, {audio_s / bar:.1f} audio-s per wall-s")
    print(f"corpus refresh, whole: {ours:.1f} s, {audio_s / ours:.1f} audio-s per wall-s")
    print(f"ratio (refresh throughput / MusicExtractor pool throughput): {bar / ours:.2f}x")


def _workers() -> int:
    from pipeline.audio.isolation import default_workers

    return default_workers()


if __name__ == "__main__":
    main()
