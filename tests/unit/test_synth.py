"""Synthetic signals are only useful as ground truth if their levels, timing and files are exact."""

from __future__ import annotations

import numpy as np
import pytest

from corpus_demo import synth
from pipeline.audio.decode import decode


def test_sine_peak_and_rms_follow_dbfs():
    x = synth.sine(1000, -20.0, 1.0, sr=48000)
    assert x.dtype == np.float32 and x.shape == (48000,)
    assert np.max(np.abs(x)) == pytest.approx(0.1, rel=1e-3)
    assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(0.1 / np.sqrt(2), rel=1e-3)


def test_silence_is_zero_with_exact_length():
    x = synth.silence(0.5, sr=22050)
    assert x.shape == (11025,) and not x.any()


def test_negative_duration_is_rejected():
    with pytest.raises(ValueError):
        synth.silence(-1.0)


def test_white_noise_is_calibrated_and_seeded():
    a = synth.white_noise(-30.0, 2.0, seed=7)
    rms_db = 20 * np.log10(np.sqrt(np.mean(a.astype(np.float64) ** 2)))
    assert rms_db == pytest.approx(-30.0, abs=0.1)
    assert np.array_equal(a, synth.white_noise(-30.0, 2.0, seed=7))
    assert not np.array_equal(a, synth.white_noise(-30.0, 2.0, seed=8))


def test_to_stereo_duplicates_mono_and_rejects_other_shapes():
    x = synth.sine(440, -6, 0.01)
    st = synth.to_stereo(x)
    assert st.shape == (len(x), 2) and st.dtype == np.float32
    assert np.array_equal(st[:, 0], x) and np.array_equal(st[:, 1], x)
    assert np.array_equal(synth.to_stereo(st), st)
    with pytest.raises(ValueError):
        synth.to_stereo(np.zeros((10, 3), dtype=np.float32))


@pytest.mark.parametrize("bpm", [90, 120, 140])
def test_click_track_places_one_click_per_beat(bpm):
    sr = 44100
    x = synth.click_track(bpm, 4.0, sr=sr)
    onsets = np.flatnonzero((np.abs(x[1:]) > 1e-3) & (np.abs(x[:-1]) <= 1e-3)) + 1
    starts = onsets[np.insert(np.diff(onsets) > sr // 10, 0, True)]
    expected = np.round(np.arange(0, 4.0, 60 / bpm) * sr)
    assert len(starts) == len(expected)
    assert np.all(np.abs(starts - expected) <= 2)


def test_chord_progression_is_deterministic_and_peak_normalised():
    a = synth.chord_progression("A", "minor", 120, 2.0, dbfs=-6.0, seed=1)
    assert a.dtype == np.float32 and a.shape == (88200,)
    assert np.max(np.abs(a)) == pytest.approx(10 ** (-6 / 20), rel=1e-4)
    assert np.array_equal(a, synth.chord_progression("A", "minor", 120, 2.0, dbfs=-6.0, seed=1))
    assert not np.array_equal(a, synth.chord_progression("A", "minor", 120, 2.0, dbfs=-6.0, seed=2))


def test_chord_progression_spells_the_key():
    """Energy concentrates on the key's tonic triad pitch classes: A minor = A, C, E."""
    sr = 44100
    x = synth.chord_progression("A", "minor", 120, 2.0, sr=sr).astype(np.float64)
    bar = x[: 2 * sr]
    spectrum = np.abs(np.fft.rfft(bar))
    freqs = np.fft.rfftfreq(len(bar), 1 / sr)
    band = (freqs > 60) & (freqs < 2000)
    pitch_class = np.round(12 * np.log2(freqs[band] / 440.0)).astype(int) % 12
    energy = np.bincount(pitch_class, weights=spectrum[band] ** 2, minlength=12)
    top3 = set(np.argsort(energy)[-3:])
    assert top3 == {0, 3, 7}  # A, C, E relative to A


@pytest.mark.parametrize(
    "key,scale,bpm", [("H", "major", 120), ("A", "dorian", 120), ("A", "major", 0)]
)
def test_chord_progression_rejects_bad_arguments(key, scale, bpm):
    with pytest.raises(ValueError):
        synth.chord_progression(key, scale, bpm, 1.0)


@pytest.mark.parametrize(
    "fmt,codec",
    [("wav", "pcm_s16le"), ("flac", "flac"), ("ogg", "vorbis"), ("mp3", "mp3")],
)
def test_write_audio_round_trips_through_decode(tmp_path, fmt, codec):
    sr = 44100
    x = synth.sine(1000, -6.0, 2.0, sr=sr)
    path = synth.write_audio(x, sr, tmp_path / f"tone.{fmt}", fmt)
    audio = decode(path)
    assert audio.codec == codec
    assert audio.sample_rate == sr
    assert audio.channels == 2
    assert audio.duration_s == pytest.approx(2.0, abs=0.06)
    rms = np.sqrt(np.mean(audio.mono.astype(np.float64) ** 2))
    assert 20 * np.log10(rms * np.sqrt(2)) == pytest.approx(-6.0, abs=0.5)
    if fmt in ("wav", "flac"):
        np.testing.assert_allclose(audio.mono, x, atol=2.0**-14)


def test_write_audio_keeps_sample_rate_and_stereo_image(tmp_path):
    left = synth.sine(440, -6.0, 1.0, sr=48000)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    audio = decode(synth.write_audio(stereo, 48000, tmp_path / "left.flac", "flac"))
    assert audio.sample_rate == 48000
    assert np.max(np.abs(audio.samples[:, 1])) == 0
    assert np.max(np.abs(audio.samples[:, 0])) == pytest.approx(synth.db_to_amplitude(-6), abs=1e-3)


def test_write_audio_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError):
        synth.write_audio(synth.silence(0.1), 44100, tmp_path / "x.aac", "aac")
