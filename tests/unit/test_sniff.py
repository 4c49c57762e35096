"""The format comes from the bytes, and the header's promises are read before any decoding."""

from __future__ import annotations

import mmap
import struct

import numpy as np
import pytest

from corpus_demo import synth
from pipeline.audio.decode import declared_frames
from pipeline.audio.sniff import Declared, declared, sniff

SR = 44100


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """The same 5 s cadence in every format Essentia writes, each under a misleading name."""
    import essentia.standard as es

    folder = tmp_path_factory.mktemp("sniff")
    music = synth.chord_progression("A", "minor", 120, 5.0)
    files = {}
    for fmt in synth.FORMATS:
        files[fmt] = synth.write_audio(music, SR, folder / f"{fmt}.bin", fmt).read_bytes()
    aiff = folder / "aiff.bin"
    es.AudioWriter(filename=str(aiff), format="aiff", sampleRate=SR)(synth.to_stereo(music))
    files["aiff"] = aiff.read_bytes()
    return files


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3", "aiff"])
def test_real_files_are_recognised_with_their_header_facts(encoded, fmt):
    data = encoded[fmt]
    assert sniff(data) == fmt
    facts = declared(data)
    assert (facts.format, facts.sample_rate, facts.channels) == (fmt, SR, 2)
    assert facts.duration_s == pytest.approx(5.0, abs=0.06)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_declared_frames_agree_with_the_decoder_module(encoded, fmt, tmp_path):
    path = tmp_path / "x"
    path.write_bytes(encoded[fmt])
    assert declared(encoded[fmt]).frames == declared_frames(path) == 5 * SR


def test_works_on_an_mmap_without_reading_the_whole_file(encoded, tmp_path):
    path = tmp_path / "x"
    path.write_bytes(encoded["flac"])
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        assert sniff(data) == "flac"
        assert declared(data).frames == 5 * SR


def _id3(payload_size: int) -> bytes:
    size = bytes((payload_size >> s) & 0x7F for s in (21, 14, 7, 0))
    return b"ID3\x04\x00\x00" + size + bytes(payload_size)


def test_id3_tag_is_skipped_to_find_what_follows(encoded):
    assert sniff(_id3(3000) + encoded["flac"]) == "flac"
    assert declared(_id3(3000) + encoded["flac"]).frames == 5 * SR
    assert sniff(_id3(3000) + encoded["mp3"][encoded["mp3"].find(b"\xff\xfb") :]) == "mp3"
    assert sniff(_id3(3000) + b"not audio at all" * 100) is None


@pytest.mark.parametrize("seed", range(50))
def test_random_bytes_are_not_audio(seed):
    data = np.random.default_rng(seed).integers(0, 256, 8192, dtype=np.uint8).tobytes()
    assert sniff(data) is None
    assert declared(data) is None


def test_a_lone_mpeg_header_is_not_enough():
    one_header = b"\xff\xfb\x90\x64" + bytes(np.random.default_rng(0).integers(0, 256, 8192))
    assert sniff(one_header) is None


@pytest.mark.parametrize(
    "data", [b"", b"RIFF", b"<!doctype html><html>404</html>", b"\x00" * 4096, b"fLa"]
)
def test_empty_short_and_text_inputs_are_unknown(data):
    assert sniff(data) is None


def _wav(channels: int, rate: int, data_size: int, body: bytes = b"", riff: bytes = b"RIFF"):
    align = channels * 2
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * align, align, 16)
    chunks = b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", data_size)
    return riff + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + chunks + body


def test_wav_header_declaring_hours_is_read_as_declared():
    facts = declared(_wav(2, SR, 0xFFFFFFF0, bytes(1000)))
    assert facts.duration_s == pytest.approx(0xFFFFFFF0 / (SR * 4))
    assert facts.duration_s > 6 * 3600


def test_streamed_wav_without_a_length_is_measured_by_its_size():
    facts = declared(_wav(2, SR, 0xFFFFFFFF, bytes(SR * 4)))
    assert facts.duration_s == pytest.approx(1.0)


def test_rf64_length_comes_from_ds64():
    ds64 = b"ds64" + struct.pack("<I", 28) + struct.pack("<QQQ", 0, 10 * SR * 4, 0) + bytes(4)
    header = _wav(2, SR, 0xFFFFFFFF, riff=b"RF64")
    data = header[:12] + ds64 + header[12:]
    assert sniff(data) == "wav"
    assert declared(data).frames == 10 * SR


def test_hostile_channel_counts_and_rates_are_reported_not_trusted():
    assert declared(_wav(4096, SR, 8192)).channels == 4096
    assert declared(_wav(2, 1_000_000_000, 8192)).sample_rate == 1e9


def _aiff(channels: int, frames: int, rate: float) -> bytes:
    exponent = int(np.floor(np.log2(rate)))
    mantissa = int(rate * 2 ** (63 - exponent))
    comm = struct.pack(">hIh", channels, frames, 16) + struct.pack(
        ">HQ", exponent + 16383, mantissa
    )
    body = b"AIFF" + b"COMM" + struct.pack(">I", len(comm)) + comm
    return b"FORM" + struct.pack(">I", len(body)) + body


def test_aiff_extended_float_sample_rate():
    facts = declared(_aiff(1, 96000 * 3, 96000.0))
    assert facts == Declared("aiff", 96000.0, 1, 288000, 3.0)


def _atom(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def _mp4(seconds: int, rate: int, channels: int) -> bytes:
    mvhd = _atom(
        b"mvhd", bytes(4) + bytes(8) + struct.pack(">II", 1000, seconds * 1000) + bytes(80)
    )
    entry = _atom(
        b"mp4a",
        bytes(6)
        + struct.pack(">H", 1)
        + bytes(8)
        + struct.pack(">HHHHI", channels, 16, 0, 0, rate << 16),
    )
    stsd = _atom(b"stsd", bytes(4) + struct.pack(">I", 1) + entry)
    minf = _atom(b"minf", _atom(b"smhd", bytes(8)) + _atom(b"stbl", stsd))
    trak = _atom(b"trak", _atom(b"mdia", minf))
    return _atom(b"ftyp", b"M4A \x00\x00\x00\x00") + _atom(b"moov", mvhd + trak)


def test_mp4_duration_rate_and_channels_come_from_moov():
    data = _mp4(7200, 48000, 2)
    assert sniff(data) == "mp4"
    assert declared(data) == Declared("mp4", 48000.0, 2, 7200 * 48000, 7200.0)


def test_truncated_headers_give_what_they_can_without_raising(encoded):
    for fmt in ("wav", "flac", "ogg", "aiff"):
        for cut in (5, 13, 30, 60):
            data = encoded[fmt][:cut]
            facts = declared(data)
            assert facts is None or facts.format == fmt
