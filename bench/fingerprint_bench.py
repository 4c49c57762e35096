"""Fingerprint dedup at catalogue scale: the indexed lookup against exhaustive comparison.

Synthetic Chromaprint word sequences stand in for a catalogue (a 3-minute track is about
1,450 words): unrelated recordings are independent random words, and a share of the
catalogue are copies of earlier ones with bits flipped at a given error rate and a few
words of offset, as a re-encode with encoder delay gives. Printed per size: seconds, the
copies found and missed, false matches, and the rate; the exhaustive comparison (what
`find_duplicates` did before the index) runs on the smallest size for a ratio.

    .venv/bin/python bench/fingerprint_bench.py [--sizes 1000,10000,100000] [--ber 0.03]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pipeline.audio.fingerprint import (
    MAX_BIT_ERROR_RATE,
    MIN_WORDS,
    FingerprintIndex,
    bit_error_rate,
)


def catalogue(size: int, copies: float, ber: float, words: int, seed: int = 7):
    """[(key, words, key of the recording it copies or None)] in delivery order."""
    rng = np.random.default_rng(seed)
    items: list[tuple[str, np.ndarray, str | None]] = []
    for n in range(size):
        if items and rng.random() < copies:
            source_key, source, _ = items[int(rng.integers(len(items)))]
            while _ is not None:
                source_key, source, _ = next(i for i in items if i[0] == _)
            flips = rng.random((len(source), 32)) < ber
            noise = (flips * (1 << np.arange(32, dtype=np.uint64))).sum(axis=1)
            copy = source ^ noise.astype(np.uint32)
            shift = int(rng.integers(0, 8))
            items.append((f"T{n}", copy[shift:], source_key))
        else:
            length = int(rng.integers(words // 2, words * 3 // 2))
            items.append((f"T{n}", rng.integers(0, 2**32, length, dtype=np.uint32), None))
    return items


def indexed(items) -> tuple[dict, float]:
    index, found = FingerprintIndex(), {}
    started = time.perf_counter()
    for key, words, _ in items:
        original = index.match(words)
        if original is None:
            index.add(key, words)
        else:
            found[key] = original
    return found, time.perf_counter() - started


def exhaustive(items) -> tuple[dict, float]:
    kept, found = [], {}
    started = time.perf_counter()
    for key, words, _ in items:
        if len(words) < MIN_WORDS:
            continue
        for original, other in kept:
            if bit_error_rate(words, other) <= MAX_BIT_ERROR_RATE:
                found[key] = original
                break
        else:
            kept.append((key, words))
    return found, time.perf_counter() - started


def score(items, found) -> tuple[int, int, int]:
    truth = {key: source for key, _, source in items if source is not None}
    hits = sum(found.get(key) == source for key, source in truth.items())
    false = sum(key not in truth for key in found)
    return hits, len(truth) - hits, false


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--copies", type=float, default=0.05)
    parser.add_argument("--ber", type=float, default=0.03)
    parser.add_argument("--words", type=int, default=1450)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print("| method | recordings | seconds | per second | copies found | missed | false |")
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        items = catalogue(size, args.copies, args.ber, args.words)
        methods = [("indexed", indexed)]
        if size == sizes[0]:
            methods.append(("exhaustive", exhaustive))
        for name, method in methods:
            found, seconds = method(items)
            hits, missed, false = score(items, found)
            print(
                f"| {name} | {size:,} | {seconds:.1f} | {size / seconds:,.0f} "
                f"| {hits} | {missed} | {false} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
