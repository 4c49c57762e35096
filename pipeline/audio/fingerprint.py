"""Duplicate recordings: the same audio delivered twice, whatever the codec, bit rate or gain.

A content hash only catches byte-identical files. Chromaprint (Essentia's `Chromaprinter`,
bundled in the PyPI wheel) summarises ~8 frames a second of chroma into 32-bit words that
survive lossy re-encoding and level changes; two deliveries of one recording then differ in a
few bits per word, two different recordings in about half of them. The compressed fingerprint
string is what gets stored; `decode_fingerprint` turns it back into the word sequence.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Hashable, Iterable

import numpy as np

from pipeline.audio.decode import DecodedAudio

# Bit error rate at or under which two aligned fingerprints are one recording. Measured here:
# FLAC vs MP3 at -3 dB 0.000; synthetic cadences in other keys or tempi >= 0.28; unrelated
# audio ~0.5.
MAX_BIT_ERROR_RATE = 0.2
# Alignment search, in fingerprint words (one word per 4096/3 samples at 11025 Hz, ~0.124 s):
# covers encoder delay and a few seconds of trimmed leading silence.
MAX_OFFSET_WORDS = 40
# The aligned overlap must cover this share of the longer fingerprint: an excerpt or a radio
# edit is not a duplicate of the full recording.
MIN_COVERAGE = 0.8
MIN_WORDS = 10
# The index files a fingerprint under the words whose hashed value has its top SAMPLE_BITS
# bits clear (one word in 2^SAMPLE_BITS); a word filed under more than MAX_POSTINGS
# recordings says nothing about any of them; at most MAX_CANDIDATES kept recordings, those
# sharing the most words and at least MIN_SHARED (one can be chance), get the aligned
# comparison.
SAMPLE_BITS = 3
MIN_SHARED = 2
MAX_POSTINGS = 1000
MAX_CANDIDATES = 20


class FingerprintError(ValueError):
    """The string is not a compressed Chromaprint fingerprint."""


def fingerprint(audio: DecodedAudio) -> str | None:
    """Chromaprint of the mono mix; None when the audio is too short to fingerprint."""
    import essentia.standard as es

    mono = np.ascontiguousarray(audio.mono, dtype=np.float32)
    if mono.size == 0:
        return None
    text = es.Chromaprinter(sampleRate=float(audio.sample_rate), maxLength=0)(mono)
    return text or None


def decode_fingerprint(text: str) -> np.ndarray:
    """The uint32 words of a compressed, URL-safe base64 Chromaprint fingerprint.

    Layout (chromaprint's fingerprint_compressor): one byte of algorithm, three bytes of word
    count, then each word XOR its predecessor written as the gaps between its set bits, in
    3-bit little-endian groups terminated by 0, with gaps >= 7 continued in 5-bit groups.
    """
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise FingerprintError(f"not base64: {exc}") from exc
    if len(raw) < 4:
        raise FingerprintError("shorter than its 4-byte header")
    count = int.from_bytes(raw[1:4], "big")
    if count == 0:
        return np.zeros(0, dtype=np.uint32)
    normal = _unpack(raw[4:], 3)
    ends = np.flatnonzero(normal == 0)
    if len(ends) < count:
        raise FingerprintError(f"header declares {count} words, data holds {len(ends)}")
    normal = normal[: ends[count - 1] + 1].astype(np.int64)
    exceptional = np.flatnonzero(normal == 7)
    if exceptional.size:
        extra_start = 4 + (len(normal) * 3 + 7) // 8
        extra = _unpack(raw[extra_start:], 5)
        if len(extra) < exceptional.size:
            raise FingerprintError("exceptional bits are missing")
        normal[exceptional] += extra[: exceptional.size]
    return _words(normal, count)


def _unpack(data: bytes, width: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    groups = bits[: len(bits) // width * width].reshape(-1, width)
    return groups @ (1 << np.arange(width))


def _words(gaps: np.ndarray, count: int) -> np.ndarray:
    ends = gaps == 0
    word = np.concatenate(([0], np.cumsum(ends)[:-1]))
    position = np.cumsum(gaps)
    word_start = np.concatenate(([0], position[ends][:-1]))
    bit = position - word_start[word]
    set_bits = ~ends
    if bit[set_bits].size and bit[set_bits].max() > 32:
        raise FingerprintError("a bit position beyond 32")
    deltas = np.zeros(count, dtype=np.uint64)
    np.bitwise_or.at(deltas, word[set_bits], np.left_shift(1, bit[set_bits] - 1).astype(np.uint64))
    return np.bitwise_xor.accumulate(deltas).astype(np.uint32)


def bit_error_rate(a: np.ndarray, b: np.ndarray) -> float:
    """Share of differing bits at the best alignment whose overlap covers MIN_COVERAGE of the
    longer fingerprint; 1.0 when no alignment qualifies."""
    longer, shorter = (a, b) if len(a) >= len(b) else (b, a)
    need = max(MIN_WORDS, int(np.ceil(MIN_COVERAGE * len(longer))))
    if len(shorter) < need:
        return 1.0
    best = 1.0
    for offset in range(-MAX_OFFSET_WORDS, MAX_OFFSET_WORDS + 1):
        x = longer[max(0, offset) :]
        y = shorter[max(0, -offset) :]
        n = min(len(x), len(y))
        if n < need:
            continue
        errors = int(np.bitwise_count(x[:n] ^ y[:n]).sum(dtype=np.int64))
        best = min(best, errors / (32 * n))
    return best


def find_duplicates(
    items: Iterable[tuple[Hashable, str | None]],
) -> dict[Hashable, Hashable]:
    """{duplicate key: original key}; in the given order, the first of a recording is kept.
    Items without a fingerprint are skipped."""
    index = FingerprintIndex()
    duplicates: dict[Hashable, Hashable] = {}
    for key, text in items:
        if not text:
            continue
        words = decode_fingerprint(text)
        original = index.match(words)
        if original is not None:
            duplicates[key] = original
        else:
            index.add(key, words)
    return duplicates


class FingerprintIndex:
    """The recordings kept so far, looked up by the fingerprint words they share.

    Comparing a new fingerprint with every kept one costs time quadratic in a catalogue.
    Instead each kept fingerprint is filed under a sample of its 32-bit words (chosen by
    value, so every copy of a recording samples the same words wherever they sit), and only
    kept fingerprints sharing at least two sampled words become candidates for the aligned
    comparison, most shared first. Two copies agree on a whole word with probability
    (1 - bit error rate)^32: re-encodes and gain changes (measured 0.00-0.03) share dozens
    of sampled words even over 30 seconds, so they are found as before. Near the limit of
    0.2 a pair shares about one word in 1,300 and is likely missed, where the exhaustive
    comparison would have merged it. Words that many recordings share (silence, constant
    tones) are not used for lookup.
    """

    def __init__(self) -> None:
        # word -> the kept recording filed under it, or a list once several are
        self._postings: dict[int, int | list[int]] = {}
        self._kept: list[tuple[Hashable, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self._kept)

    def match(self, words: np.ndarray) -> Hashable | None:
        """The key of a kept recording `words` duplicates, or None."""
        if len(words) < MIN_WORDS:
            return None
        shared: Counter[int] = Counter()
        for word in _sampled(words):
            postings = self._postings.get(word)
            if isinstance(postings, int):
                shared[postings] += 1
            elif postings and len(postings) <= MAX_POSTINGS:
                shared.update(postings)
        for number, count in shared.most_common(MAX_CANDIDATES):
            if count < MIN_SHARED:
                break
            key, kept = self._kept[number]
            if bit_error_rate(words, kept) <= MAX_BIT_ERROR_RATE:
                return key
        return None

    def add(self, key: Hashable, words: np.ndarray) -> None:
        """Keep a recording (one too short to compare is never matched, so not kept)."""
        if len(words) < MIN_WORDS:
            return
        number = len(self._kept)
        self._kept.append((key, words))
        for word in _sampled(words):
            postings = self._postings.setdefault(word, number)
            if isinstance(postings, int) and postings != number:
                self._postings[word] = [postings, number]
            elif isinstance(postings, list) and len(postings) <= MAX_POSTINGS:
                postings.append(number)


def _sampled(words: np.ndarray) -> list[int]:
    """The distinct words of a fingerprint whose value falls in the sample."""
    hashed = words.astype(np.uint64) * np.uint64(0x9E3779B1) & np.uint64(0xFFFFFFFF)
    picked = words[(hashed >> np.uint64(32 - SAMPLE_BITS)) == 0]
    return np.unique(picked).tolist()
