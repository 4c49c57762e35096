"""What a delivered file really is, from its bytes, and what its header promises.

File names lie (a WAV named .mp3, an HTML error page named .flac); magic numbers rarely do. The
header facts (rate, channels, length) let the caller refuse a decoder bomb, a header that
declares hours of audio or thousands of channels, before a native decoder allocates for it.
Everything here is pure: a bytes-like object in (bytes, memoryview or a read-only mmap of the
file, so only the pages looked at are read), facts out; nothing decodes audio.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

FORMATS = ("wav", "flac", "ogg", "mp3", "aiff", "mp4")

MP3_SYNC_SEARCH = 4096
OGG_TAIL_SEARCH = 65536
# Chunk walks stop here: a hostile file of millions of empty chunks must not stall the parse.
MAX_CHUNKS = 4096

_MPEG1_BITRATES = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MPEG2_BITRATES = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True)
class Declared:
    """What a header claims. None means the header does not say (or we do not read it)."""

    format: str
    sample_rate: float | None = None
    channels: int | None = None
    frames: int | None = None
    duration_s: float | None = None


def sniff(data) -> str | None:
    """The container format from magic numbers ("wav", "flac", ...), or None if unknown.

    An ID3v2 tag is skipped, so `data` must reach past it: pass the whole file (an mmap).
    MP3 without a tag is only recognised by two consecutive valid Layer III frame headers,
    so random bytes are not mistaken for it.
    """
    start = _id3_end(data)
    head = bytes(data[start : start + 12])
    if head[:4] == b"fLaC":
        return "flac"
    if start == 0:
        if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
            return "wav"
        if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            return "aiff"
        if head[:4] == b"OggS":
            return "ogg"
        if head[4:8] == b"ftyp":
            return "mp4"
    return "mp3" if _first_mp3_frame(data, start) is not None else None


def declared(data) -> Declared | None:
    """Header facts of a sniffed file; None when the format is unknown."""
    fmt = sniff(data)
    if fmt is None:
        return None
    try:
        return _PARSERS[fmt](data)
    except (struct.error, IndexError, ValueError, ZeroDivisionError, OverflowError):
        return Declared(fmt)


def _u32be(data, offset: int) -> int:
    return struct.unpack(">I", bytes(data[offset : offset + 4]))[0]


def _id3_end(data) -> int:
    head = bytes(data[:10])
    if len(head) < 10 or head[:3] != b"ID3" or any(b & 0x80 for b in head[6:10]):
        return 0
    size = head[6] << 21 | head[7] << 14 | head[8] << 7 | head[9]
    return 10 + size + (10 if head[5] & 0x10 else 0)


def _mp3_header(data, offset: int) -> dict | None:
    b = bytes(data[offset : offset + 4])
    if len(b) < 4 or b[0] != 0xFF or b[1] & 0xE0 != 0xE0:
        return None
    version, layer = (b[1] >> 3) & 3, (b[1] >> 1) & 3
    bitrate_index, rate_index = b[2] >> 4, (b[2] >> 2) & 3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1 = version == 3
    bitrate = (_MPEG1_BITRATES if mpeg1 else _MPEG2_BITRATES)[bitrate_index] * 1000
    rate = _MPEG_RATES[version][rate_index]
    samples = 1152 if mpeg1 else 576
    length = samples // 8 * bitrate // rate + ((b[2] >> 1) & 1)
    mono = b[3] >> 6 == 3
    return {
        "mpeg1": mpeg1,
        "bitrate": bitrate,
        "rate": rate,
        "samples": samples,
        "length": length,
        "channels": 1 if mono else 2,
    }


def _first_mp3_frame(data, start: int) -> tuple[int, dict] | None:
    """(offset, header) of the first frame confirmed by the header of the frame after it."""
    end = min(len(data), start + MP3_SYNC_SEARCH)
    window = bytes(data[start : end + 4])
    position = window.find(b"\xff")
    while 0 <= position < end - start:
        offset = start + position
        header = _mp3_header(data, offset)
        if header is not None:
            following = offset + header["length"]
            if following + 4 > len(data) and offset == start:
                return offset, header
            other = _mp3_header(data, following)
            if other is not None and (other["rate"], other["mpeg1"]) == (
                header["rate"],
                header["mpeg1"],
            ):
                return offset, header
        position = window.find(b"\xff", position + 1)
    return None


def _mp3(data) -> Declared:
    found = _first_mp3_frame(data, _id3_end(data))
    if found is None:
        return Declared("mp3")
    offset, header = found
    frames = _xing_frames(data, offset, header)
    if frames is not None:
        duration = frames * header["samples"] / header["rate"]
    else:
        duration = (len(data) - offset) * 8 / header["bitrate"]
    return Declared(
        "mp3",
        sample_rate=float(header["rate"]),
        channels=header["channels"],
        frames=round(duration * header["rate"]),
        duration_s=duration,
    )


def _xing_frames(data, offset: int, header: dict) -> int | None:
    """Frame count from a Xing/Info header, which VBR encoders put in the first frame."""
    side_info = (
        (32 if header["channels"] == 2 else 17)
        if header["mpeg1"]
        else (17 if header["channels"] == 2 else 9)
    )
    tag = offset + 4 + side_info
    if bytes(data[tag : tag + 4]) not in (b"Xing", b"Info"):
        return None
    if not _u32be(data, tag + 4) & 1:
        return None
    return _u32be(data, tag + 8)


def _streaminfo(block: bytes) -> tuple[int, int, int]:
    """(sample rate, channels, total samples) from a FLAC STREAMINFO block body."""
    packed = int.from_bytes(block[10:18], "big")
    rate = packed >> 44
    channels = ((packed >> 41) & 0x7) + 1
    total = packed & ((1 << 36) - 1)
    return rate, channels, total


def _declared_from(fmt: str, rate: float, channels: int, frames: int | None) -> Declared:
    duration = frames / rate if frames and rate else None
    return Declared(fmt, float(rate), channels, frames or None, duration)


def _flac(data) -> Declared:
    start = _id3_end(data) + 4
    if bytes(data[start : start + 1])[0] & 0x7F != 0:
        return Declared("flac")
    rate, channels, total = _streaminfo(bytes(data[start + 4 : start + 4 + 34]))
    return _declared_from("flac", rate, channels, total)


def _wav(data) -> Declared:
    """RIFF/RF64 chunks: `fmt ` for the layout, `data` (or RF64's ds64) for the length."""
    offset, long_size, fmt = 12, None, None
    for _ in range(MAX_CHUNKS):
        if offset + 8 > len(data):
            break
        chunk_id = bytes(data[offset : offset + 4])
        size = struct.unpack("<I", bytes(data[offset + 4 : offset + 8]))[0]
        body = offset + 8
        if chunk_id == b"ds64":
            long_size = struct.unpack("<Q", bytes(data[body + 8 : body + 16]))[0]
        elif chunk_id == b"fmt ":
            fmt = struct.unpack("<HHIIH", bytes(data[body : body + 14]))
        elif chunk_id == b"data":
            if fmt is None:
                break
            _tag, channels, rate, byte_rate, block_align = fmt
            if size in (0, 0xFFFFFFFF):
                size = long_size if long_size is not None else len(data) - body
            frames = size // block_align if block_align else None
            duration = size / byte_rate if byte_rate else None
            return Declared("wav", float(rate), channels, frames, duration)
        offset = body + size + size % 2
    if fmt is None:
        return Declared("wav")
    return Declared("wav", float(fmt[2]), fmt[1])


def _aiff(data) -> Declared:
    offset = 12
    for _ in range(MAX_CHUNKS):
        if offset + 8 > len(data):
            break
        chunk_id, size = bytes(data[offset : offset + 4]), _u32be(data, offset + 4)
        if chunk_id == b"COMM":
            body = bytes(data[offset + 8 : offset + 8 + 18])
            channels, frames = struct.unpack(">hI", body[:6])
            exponent, mantissa = struct.unpack(">HQ", body[8:18])
            rate = mantissa * 2.0 ** ((exponent & 0x7FFF) - 16383 - 63)
            return _declared_from("aiff", rate, channels, frames)
        offset += 8 + size + size % 2
    return Declared("aiff")


def _ogg(data) -> Declared:
    """Rate and channels from the first packet; length from the last page's granule position."""
    segments = bytes(data[26:27])[0]
    packet = bytes(data[27 + segments : 27 + segments + 64])
    serial = bytes(data[14:18])
    granule_offset = 0
    if packet.startswith(b"\x01vorbis"):
        channels, rate = packet[11], struct.unpack("<I", packet[12:16])[0]
    elif packet.startswith(b"OpusHead"):
        channels, rate = packet[9], 48000
        granule_offset = struct.unpack("<H", packet[10:12])[0]
    elif packet.startswith(b"\x7fFLAC") and packet[9:13] == b"fLaC":
        rate, channels, _total = _streaminfo(packet[17:51])
    else:
        return Declared("ogg")
    granule = _last_granule(data, serial)
    frames = granule - granule_offset if granule is not None else None
    return _declared_from("ogg", rate, channels, frames)


def _last_granule(data, serial: bytes) -> int | None:
    tail_start = max(0, len(data) - OGG_TAIL_SEARCH)
    tail = bytes(data[tail_start:])
    position = tail.rfind(b"OggS")
    while position >= 0:
        page = tail[position : position + 18]
        if len(page) == 18 and page[14:18] == serial:
            granule = struct.unpack("<q", page[6:14])[0]
            if granule >= 0:
                return granule
        position = tail.rfind(b"OggS", 0, position)
    return None


def _mp4(data) -> Declared:
    """Duration from moov/mvhd; rate and channels from the first sound sample entry."""
    moov = _child(data, 0, len(data), b"moov")
    if moov is None:
        return Declared("mp4")
    duration = None
    mvhd = _child(data, *moov, b"mvhd")
    if mvhd is not None:
        body = mvhd[0]
        if bytes(data[body : body + 1]) == b"\x01":
            timescale = _u32be(data, body + 20)
            length = struct.unpack(">Q", bytes(data[body + 24 : body + 32]))[0]
        else:
            timescale, length = _u32be(data, body + 12), _u32be(data, body + 16)
        duration = length / timescale if timescale else None
    rate = channels = None
    for trak in _children(data, *moov, b"trak"):
        stsd = _path(data, trak, (b"mdia", b"minf", b"stbl", b"stsd"))
        if stsd is None or _path(data, trak, (b"mdia", b"minf", b"smhd")) is None:
            continue
        entry = stsd[0] + 8
        channels = struct.unpack(">H", bytes(data[entry + 24 : entry + 26]))[0]
        rate = float(_u32be(data, entry + 32) >> 16)
        break
    frames = round(duration * rate) if duration is not None and rate else None
    return Declared("mp4", rate, channels, frames, duration)


def _children(data, start: int, end: int, kind: bytes):
    offset = start
    for _ in range(MAX_CHUNKS):
        if offset + 8 > end:
            return
        size, atom = _u32be(data, offset), bytes(data[offset + 4 : offset + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", bytes(data[offset + 8 : offset + 16]))[0], 16
        elif size == 0:
            size = end - offset
        if size < header:
            return
        if atom == kind:
            yield offset + header, min(offset + size, end)
        offset += size


def _child(data, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    return next(_children(data, start, end, kind), None)


def _path(data, span: tuple[int, int], kinds: tuple[bytes, ...]) -> tuple[int, int] | None:
    for kind in kinds:
        found = _child(data, *span, kind)
        if found is None:
            return None
        span = found
    return span


_PARSERS = {
    "wav": _wav,
    "flac": _flac,
    "ogg": _ogg,
    "mp3": _mp3,
    "aiff": _aiff,
    "mp4": _mp4,
}
