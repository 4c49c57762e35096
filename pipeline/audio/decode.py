"""Decode a delivered audio file exactly once, and refuse anything we could not trust.

Essentia's AudioLoader (FFmpeg) skips corrupt frames with only a warning on stderr, so a truncated
FLAC or WAV silently decodes to a shorter signal. Lossless containers declare their length in the
header; comparing that to what was decoded catches truncation without a second decode.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class AudioUndecodable(Exception):
    """The file cannot be turned into a finite, non-empty signal."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot decode {self.path}: {reason}")


@dataclass(frozen=True)
class DecodedAudio:
    """A decoded signal as AudioLoader gives it.

    `samples` is always float32 (n, 2). For a mono source (`channels == 1`) AudioLoader leaves the
    right channel at zero rather than duplicating the left, so use `mono` for a mono mix.
    """

    samples: np.ndarray
    sample_rate: float
    channels: int
    codec: str
    bit_rate: int
    duration_s: float

    @property
    def mono(self) -> np.ndarray:
        if self.channels == 1:
            return np.ascontiguousarray(self.samples[:, 0], dtype=np.float32)
        return self.samples.mean(axis=1, dtype=np.float32)


def decode(path: str | Path) -> DecodedAudio:
    """Decode `path`; raise AudioUndecodable rather than return a damaged signal."""
    import essentia.standard as es

    path = Path(path)
    if not path.is_file():
        raise AudioUndecodable(path, "no such file")
    try:
        samples, sample_rate, channels, _md5, bit_rate, codec = es.AudioLoader(filename=str(path))()
    except RuntimeError as exc:
        raise AudioUndecodable(path, _essentia_reason(exc)) from exc

    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise AudioUndecodable(path, f"unexpected decoder output shape {samples.shape}")
    if samples.shape[0] == 0:
        raise AudioUndecodable(path, "decoded to zero samples")
    if not sample_rate > 0:
        raise AudioUndecodable(path, f"invalid sample rate {sample_rate}")
    if not np.isfinite(samples).all():
        raise AudioUndecodable(path, "decoded samples contain NaN or infinity")
    declared = declared_frames(path)
    if declared is not None and samples.shape[0] < declared:
        raise AudioUndecodable(
            path, f"truncated or corrupt: header declares {declared} frames, decoded {len(samples)}"
        )
    return DecodedAudio(
        samples=samples,
        sample_rate=float(sample_rate),
        channels=int(channels),
        codec=str(codec),
        bit_rate=int(bit_rate),
        duration_s=samples.shape[0] / float(sample_rate),
    )


def _essentia_reason(exc: RuntimeError) -> str:
    text = str(exc).strip()
    return text.removeprefix("Error while configuring AudioLoader: ") or type(exc).__name__


def declared_frames(path: str | Path) -> int | None:
    """Frame count promised by a FLAC or PCM WAV header; None when unknown or not those formats."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if head.startswith(b"ID3") or head.startswith(b"fLaC"):
                return _flac_frames(f, head)
            if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
                return _wav_frames(f)
    except (OSError, struct.error):
        return None
    return None


def _flac_frames(f, head: bytes) -> int | None:
    offset = 0
    if head.startswith(b"ID3"):
        size = head[6:10]
        offset = 10 + (size[0] << 21 | size[1] << 14 | size[2] << 7 | size[3])
    f.seek(offset)
    block = f.read(4 + 4 + 18)
    if block[:4] != b"fLaC" or block[4] & 0x7F != 0:
        return None
    packed = int.from_bytes(block[18:26], "big")
    total = packed & ((1 << 36) - 1)
    return total or None


_FRAME_ALIGNED_WAV_FORMATS = {1, 3, 6, 7, 0xFFFE}


def _wav_frames(f) -> int | None:
    f.seek(12)
    block_align = None
    while True:
        header = f.read(8)
        if len(header) < 8:
            return None
        chunk_id, size = header[:4], struct.unpack("<I", header[4:])[0]
        if chunk_id == b"fmt ":
            fmt = f.read(size)
            format_tag = struct.unpack_from("<H", fmt)[0]
            block_align = struct.unpack_from("<H", fmt, 12)[0]
            if format_tag not in _FRAME_ALIGNED_WAV_FORMATS or block_align == 0:
                return None
            f.seek(size % 2, 1)
        elif chunk_id == b"data":
            if block_align is None or size in (0, 0xFFFFFFFF):
                return None
            return size // block_align
        else:
            f.seek(size + size % 2, 1)
