"""Catalogue scale: `corpus refresh` over synthetic catalogs of growing size, as a user runs it.

Each size gets a fresh CORPUS_HOME (so the embedded SecantusDB server starts empty), a JSONL
manifest delivery, and two refreshes: the first, then the same delivery unchanged. Records
mix refused licences (most of a real catalog), admitted licences whose audio is missing, and
admitted licences sharing a few tiny real files, so every stage is exercised without hours
of descriptors. Printed per size: records per second, peak RSS of the client (the refresh
and its workers) and of the server, the unchanged refresh as a share of the first, and the
growth exponent of wall time between sizes (1.0 is linear).

    .venv/bin/python bench/catalog_bench.py [--sizes 1000,10000] [--admitted 0.001]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CORPUS = str(Path(sys.executable).with_name("corpus"))
SHARED_FILES = 4


def write_catalog(folder: Path, records: int, admitted: float) -> Path:
    """A manifest of `records` lines; about `admitted` of them have an admissible licence."""
    from corpus_demo import synth

    audio = folder / "audio"
    audio.mkdir(parents=True)
    for i in range(SHARED_FILES):
        signal = synth.chord_progression("CDEF"[i], "major", 90 + 11 * i, 2.0, seed=i)
        synth.write_audio(signal, 44100, audio / f"shared{i}.flac", "flac")
    every = max(1, round(1 / admitted)) if admitted else 0
    with (folder / "manifest.jsonl").open("w") as out:
        for n in range(records):
            record = {
                "track_id": f"T{n:08d}",
                "isrc": f"QZB{n % 100:02d}{n % 10_000_000:07d}",
                "title": f"Track {n}",
                "artists": [f"Artist {n % 5000}"],
                "audio": f"audio/track{n}.flac",
                "license": {"id": "LicenseRef-Proprietary", "territories": ["Worldwide"]},
            }
            if every and n % every == 0:
                record["license"] = {"id": "CC0-1.0"}
                if (n // every) % 2 == 0:
                    record["audio"] = f"audio/shared{(n // every) % SHARED_FILES}.flac"
            out.write(json.dumps(record) + "\n")
    partners = folder / "partners.yaml"
    partners.write_text(
        json.dumps({"partners": [{"id": "bench", "name": "Bench", "location": str(folder)}]})
    )
    return partners


class PeakRss:
    """Peak resident set of a process (kB, from /proc VmHWM), sampled until stopped."""

    def __init__(self, pid_file: Path):
        self.pid_file, self.peak, self._stop = pid_file, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                pid = json.loads(self.pid_file.read_text())["pid"]
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak = max(self.peak, int(line.split()[1]))
            except (OSError, ValueError, KeyError):
                continue

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def refresh(env: dict, partners: Path, as_of: str) -> tuple[dict, float, int]:
    """(result, wall seconds, peak client RSS in kB) of one `corpus refresh`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    run = subprocess.run(
        [CORPUS, "refresh", "--json", "--partners", str(partners), "--as-of", as_of],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(f"refresh failed:\n{run.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return json.loads(run.stdout), seconds, max(peak, before)


def measure(records: int, admitted: float, root: Path) -> dict:
    folder = root / f"catalog-{records}"
    partners = write_catalog(folder / "delivery", records, admitted)
    home = folder / "home"
    env = {**os.environ, "CORPUS_HOME": str(home), "CORPUS_STORE": str(home / "store")}
    env.pop("CORPUS_MONGO_URI", None)
    server = PeakRss(home / "mongo" / "server.json")
    first, first_s, client_kb = refresh(env, partners, "2026-11-20")
    second, second_s, _ = refresh(env, partners, "2026-11-20")
    server_kb = server.stop()
    subprocess.run([CORPUS, "services", "stop"], env=env, capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "records": records,
        "first_s": round(first_s, 1),
        "records_per_s": round(records / first_s),
        "client_peak_mib": round(client_kb / 1024),
        "server_peak_mib": round(server_kb / 1024),
        "unchanged_s": round(second_s, 1),
        "unchanged_share": round(second_s / first_s, 3),
        "accepted": first["accepted"],
        "rejected": sum(first["rejected"].values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--admitted", type=float, default=0.001)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="catalog-bench-") as tmp:
        for records in sizes:
            rows.append(measure(records, args.admitted, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    print(
        "| records | first refresh s | records/s | client peak MiB | server peak MiB "
        "| unchanged s | unchanged / first | growth exponent |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for previous, row in zip([None, *rows], rows, strict=False):
        exponent = ""
        if previous:
            exponent = math.log(row["first_s"] / previous["first_s"]) / math.log(
                row["records"] / previous["records"]
            )
            exponent = f"{exponent:.2f}"
        print(
            f"| {row['records']:,} | {row['first_s']} | {row['records_per_s']} "
            f"| {row['client_peak_mib']} | {row['server_peak_mib']} | {row['unchanged_s']} "
            f"| {row['unchanged_share']:.1%} | {exponent} |"
        )


if __name__ == "__main__":
    main()
