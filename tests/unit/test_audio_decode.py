"""Decoding must yield a trustworthy signal or a clear AudioUndecodable, never a crash."""

from __future__ import annotations

import dataclasses
import struct
import wave

import numpy as np
import pytest

from corpus_demo import synth
from pipeline.audio.decode import AudioUndecodable, DecodedAudio, declared_frames, decode

SR = 44100


def _pcm_wav(path, samples: np.ndarray, sr: int = SR) -> None:
    """A 16-bit WAV with any channel count, written without Essentia (which only writes stereo)."""
    frames = samples if samples.ndim == 2 else samples[:, None]
    with wave.open(str(path), "wb") as f:
        f.setnchannels(frames.shape[1])
        f.setsampwidth(2)
        f.setframerate(sr)
        f.writeframes(np.round(frames * 32767).astype("<i2").tobytes())


def _float_wav(path, samples: np.ndarray, sr: int = SR) -> None:
    payload = np.asarray(samples, dtype="<f4").tobytes()
    channels = samples.shape[1]
    fmt = struct.pack("<HHIIHH", 3, channels, sr, sr * channels * 4, channels * 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(payload)) + payload
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


@pytest.fixture(scope="module")
def flac_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("decode") / "tone.flac"
    return synth.write_audio(synth.sine(440, -6.0, 3.0), SR, path, "flac")


def test_decodes_stereo_wav_with_metadata(tmp_path):
    left = synth.sine(440, -6.0, 1.5)
    right = synth.sine(880, -12.0, 1.5)
    path = synth.write_audio(np.stack([left, right], axis=1), SR, tmp_path / "a.wav", "wav")
    audio = decode(path)
    assert audio.samples.dtype == np.float32 and audio.samples.shape == (len(left), 2)
    assert audio.sample_rate == SR and audio.channels == 2
    assert audio.codec == "pcm_s16le" and audio.bit_rate == SR * 16 * 2
    assert audio.duration_s == pytest.approx(1.5)
    np.testing.assert_allclose(audio.mono, (left + right) / 2, atol=2.0**-14)
    assert audio.mono.dtype == np.float32 and audio.mono.ndim == 1


def test_mono_source_leaves_right_channel_silent_and_mono_is_not_halved(tmp_path):
    x = synth.sine(1000, -6.0, 1.0)
    path = tmp_path / "mono.wav"
    _pcm_wav(path, x)
    audio = decode(path)
    assert audio.channels == 1
    assert not audio.samples[:, 1].any()
    np.testing.assert_allclose(audio.mono, x, atol=2.0**-14)


def test_decoded_audio_is_immutable(flac_file):
    audio = decode(flac_file)
    with pytest.raises(dataclasses.FrozenInstanceError):
        audio.sample_rate = 1.0  # type: ignore[misc]
    assert isinstance(audio, DecodedAudio)


def test_random_bytes_named_wav_raise_undecodable(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioUndecodable) as err:
        decode(path)
    assert "noise.wav" in str(err.value) and err.value.reason


def test_truncated_flac_raises_undecodable(tmp_path, flac_file):
    data = flac_file.read_bytes()
    path = tmp_path / "cut.flac"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioUndecodable, match="truncated"):
        decode(path)


def test_flac_cut_inside_header_raises_undecodable(tmp_path, flac_file):
    path = tmp_path / "stub.flac"
    path.write_bytes(flac_file.read_bytes()[:30])
    with pytest.raises(AudioUndecodable, match="stub.flac"):
        decode(path)


def test_truncated_wav_raises_undecodable(tmp_path):
    full = synth.write_audio(synth.sine(440, -6.0, 2.0), SR, tmp_path / "full.wav", "wav")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[:100_000])
    with pytest.raises(AudioUndecodable, match="truncated"):
        decode(cut)


@pytest.mark.parametrize("name", ["empty.wav", "empty.flac"])
def test_empty_file_raises_undecodable(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(AudioUndecodable):
        decode(path)


def test_wav_with_no_frames_raises_undecodable(tmp_path):
    path = tmp_path / "zero.wav"
    _pcm_wav(path, np.zeros((0, 2), dtype=np.float32))
    with pytest.raises(AudioUndecodable):
        decode(path)


def test_non_finite_samples_raise_undecodable(tmp_path):
    samples = np.zeros((1000, 2), dtype=np.float32)
    samples[500, 1] = np.nan
    path = tmp_path / "nan.wav"
    _float_wav(path, samples)
    with pytest.raises(AudioUndecodable, match="NaN"):
        decode(path)


def test_finite_float_wav_decodes_exactly(tmp_path):
    samples = np.full((1000, 2), 0.25, dtype=np.float32)
    path = tmp_path / "float.wav"
    _float_wav(path, samples)
    audio = decode(path)
    assert audio.codec == "pcm_f32le"
    np.testing.assert_array_equal(audio.samples, samples)


def test_more_than_two_channels_raise_undecodable(tmp_path):
    path = tmp_path / "surround.wav"
    _pcm_wav(path, np.zeros((4410, 6), dtype=np.float32))
    with pytest.raises(AudioUndecodable, match="channels"):
        decode(path)


def test_missing_file_raises_undecodable(tmp_path):
    with pytest.raises(AudioUndecodable, match="no such file"):
        decode(tmp_path / "absent.mp3")


def test_declared_frames_match_intact_lossless_files(tmp_path, flac_file):
    wav = synth.write_audio(synth.silence(0.5), SR, tmp_path / "s.wav", "wav")
    mp3 = synth.write_audio(synth.silence(0.5), SR, tmp_path / "s.mp3", "mp3")
    assert declared_frames(flac_file) == 3 * SR == len(decode(flac_file).samples)
    assert declared_frames(wav) == SR // 2
    assert declared_frames(mp3) is None


def test_decodes_mp3_with_codec_and_bit_rate(tmp_path):
    path = synth.write_audio(synth.sine(440, -6.0, 2.0), SR, tmp_path / "a.mp3", "mp3")
    audio = decode(path)
    assert audio.codec == "mp3" and audio.bit_rate == 192_000
    assert audio.duration_s == pytest.approx(2.0, abs=0.06)
