"""One recording delivered twice is caught across codecs and gain; different recordings are not."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from corpus_demo import synth
from pipeline.audio.decode import decode
from pipeline.audio.fingerprint import (
    MAX_BIT_ERROR_RATE,
    FingerprintError,
    bit_error_rate,
    decode_fingerprint,
    find_duplicates,
    fingerprint,
)

SR = 44100


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "raw,words",
    [
        (b"\0\0\0\1\1", [1]),  # gaps 1,0: bit 0 set
        (b"\0\0\0\2\x41\0", [1, 0]),  # second word: delta bit 0 again, 1 ^ 1 = 0
        (b"\0\0\0\2\1\0", [1, 1]),  # second word: no delta
        (b"\0\0\0\1\7\0", [1 << 6]),  # gap 7 + exceptional 0 -> bit 6
        (b"\0\0\0\1\7\2", [1 << 8]),  # gap 7 + exceptional 2 -> bit 8
        (b"\1\0\0\0", []),
    ],
)
def test_decodes_the_chromaprint_compression_layout(raw, words):
    assert decode_fingerprint(_b64(raw)).tolist() == words


@pytest.mark.parametrize("text", ["", "AQ", "AQAAAg", "!!!!"])
def test_malformed_fingerprints_raise(text):
    with pytest.raises(FingerprintError):
        decode_fingerprint(text)


@pytest.fixture(scope="module")
def tracks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fp")
    a = synth.chord_progression("A", "minor", 120, 30.0)
    b = synth.chord_progression("E", "major", 100, 30.0)
    late = np.concatenate([synth.silence(1.0), a])
    paths = {
        "a.flac": synth.write_audio(a, SR, folder / "a.flac", "flac"),
        "a-3db.mp3": synth.write_audio(a * synth.db_to_amplitude(-3), SR, folder / "a.mp3", "mp3"),
        "a-late.wav": synth.write_audio(late, SR, folder / "late.wav", "wav"),
        "b.flac": synth.write_audio(b, SR, folder / "b.flac", "flac"),
        "a-first-half.flac": synth.write_audio(a[: len(a) // 2], SR, folder / "h.flac", "flac"),
    }
    return {name: fingerprint(decode(path)) for name, path in paths.items()}


def test_flac_and_quieter_mp3_of_one_track_are_duplicates_and_another_track_is_not(tracks):
    words = {name: decode_fingerprint(fp) for name, fp in tracks.items()}
    assert bit_error_rate(words["a.flac"], words["a-3db.mp3"]) < MAX_BIT_ERROR_RATE / 2
    assert bit_error_rate(words["a.flac"], words["b.flac"]) > MAX_BIT_ERROR_RATE + 0.05
    items = [(k, tracks[k]) for k in ("a.flac", "b.flac", "a-3db.mp3")]
    assert find_duplicates(items) == {"a-3db.mp3": "a.flac"}


def test_the_first_in_order_is_kept_and_every_copy_points_to_it(tracks):
    items = [(k, tracks[k]) for k in ("a-3db.mp3", "a.flac", "b.flac", "a-late.wav")]
    assert find_duplicates(items) == {"a.flac": "a-3db.mp3", "a-late.wav": "a-3db.mp3"}


def test_leading_silence_is_aligned_away(tracks):
    a, late = decode_fingerprint(tracks["a.flac"]), decode_fingerprint(tracks["a-late.wav"])
    assert bit_error_rate(a, late) < MAX_BIT_ERROR_RATE


def test_an_excerpt_is_not_a_duplicate_of_the_whole(tracks):
    items = [("whole", tracks["a.flac"]), ("half", tracks["a-first-half.flac"])]
    assert find_duplicates(items) == {}


def test_items_without_fingerprint_are_skipped(tracks):
    items = [("x", None), ("a", tracks["a.flac"]), ("y", ""), ("b", tracks["a-3db.mp3"])]
    assert find_duplicates(items) == {"b": "a"}


def test_the_index_finds_noisy_shifted_copies_among_many_and_compares_few(monkeypatch):
    """Copies at a 3 % bit error rate, shifted by a few words, are found among 3,000
    unrelated recordings; each lookup runs the aligned comparison on few candidates."""
    import pipeline.audio.fingerprint as fp

    rng = np.random.default_rng(3)
    catalogue = [rng.integers(0, 2**32, 1400, dtype=np.uint32) for _ in range(3000)]
    compared = []
    real = fp.bit_error_rate
    monkeypatch.setattr(fp, "bit_error_rate", lambda a, b: compared.append(1) or real(a, b))
    index = fp.FingerprintIndex()
    for number, words in enumerate(catalogue):
        assert index.match(words) is None
        index.add(number, words)
    assert len(compared) < 10, "unrelated recordings share few sampled words"
    compared.clear()
    for number in (5, 1234, 2999):
        flips = rng.random((1400, 32)) < 0.03
        noise = (flips * (1 << np.arange(32, dtype=np.uint64))).sum(axis=1).astype(np.uint32)
        assert index.match((catalogue[number] ^ noise)[3:]) == number
    assert len(compared) == 3
    assert len(index) == 3000
