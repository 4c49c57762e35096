"""Descriptors checked against signals whose tempo, key and loudness are known by construction.

Loudness expectation (ITU-R BS.1770 / EBU R128): L = -0.691 + 10*log10(sum_i G_i * ms_i), where
ms_i is the K-weighted mean square of channel i and G = 1 for L and R. The K-filter gains about
+0.69 dB at 1 kHz, which the -0.691 offset cancels, and a sine of peak A has mean square A^2/2.
So one channel of a 1 kHz sine reads 20*log10(A) - 3.01 LUFS, and the same sine in both channels
reads 20*log10(A) LUFS: full scale stereo is ~0 LUFS, full scale mono -3 LUFS.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from corpus_demo import synth
from pipeline.audio.decode import DecodedAudio, decode
from pipeline.descriptors.essentia_set import DESCRIPTOR_FIELDS, DESCRIPTOR_SET_VERSION, compute

SR = 44100
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "shard_row.json"


def audio_of(samples: np.ndarray, sr: int = SR, channels: int = 2) -> DecodedAudio:
    stereo = synth.to_stereo(samples)
    if channels == 1:
        stereo[:, 1] = 0.0
    return DecodedAudio(stereo, float(sr), channels, "pcm_f32le", 0, len(stereo) / sr)


def assert_plain(result: dict) -> None:
    assert set(result) == set(DESCRIPTOR_FIELDS)
    for name, value in result.items():
        kind = DESCRIPTOR_FIELDS[name][0]
        if value is None:
            continue
        if kind == "string":
            assert type(value) is str, name
        elif kind == "int64":
            assert type(value) is int, name
        elif kind.startswith("list"):
            assert type(value) is list and all(type(v) is float for v in value), name
        else:
            assert type(value) is float and math.isfinite(value), name


@pytest.mark.parametrize("bpm", [90, 120, 140])
def test_click_track_tempo(bpm):
    result = compute(audio_of(synth.click_track(bpm, 12.0)))
    assert result["bpm"] == pytest.approx(bpm, abs=1.0)
    assert result["duration_s"] == pytest.approx(12.0)
    assert result["beat_count"] == pytest.approx(12.0 * bpm / 60, abs=2)
    assert result["onset_rate_per_s"] == pytest.approx(bpm / 60, rel=0.15)
    assert result["bpm_confidence"] > 0.9
    assert result["danceability"] > 0
    assert_plain(result)


def test_no_tempo_without_onsets_and_no_confidence_without_a_pulse():
    tone = compute(audio_of(synth.sine(440, -20.0, 12.0)))
    assert (tone["bpm"], tone["beat_count"], tone["bpm_confidence"]) == (None, None, 0.0)
    rng = np.random.default_rng(1)
    random_clicks = np.zeros(12 * SR, dtype=np.float32)
    click = synth.click_track(60, 0.03)
    for start in rng.uniform(0, 11.9, 30):
        random_clicks[int(start * SR) : int(start * SR) + len(click)] += click
    result = compute(audio_of(random_clicks))
    assert result["onset_rate_per_s"] > 1.5
    assert result["bpm_confidence"] < 0.3


def test_tempo_does_not_leak_between_tracks():
    first = compute(audio_of(synth.click_track(140, 5.0)))["bpm"]
    second = compute(audio_of(synth.click_track(90, 5.0)))["bpm"]
    assert first == pytest.approx(140, abs=2.0) and second == pytest.approx(90, abs=2.0)


@pytest.mark.parametrize(
    "key,scale,bpm",
    [("A", "minor", 120), ("E", "major", 100), ("Bb", "major", 90), ("F#", "minor", 140)],
)
def test_chord_progression_key_scale_and_tempo(key, scale, bpm):
    result = compute(audio_of(synth.chord_progression(key, scale, bpm, 10.0)))
    for suffix in ("", "_temperley", "_krumhansl", "_edma"):
        assert (result[f"key{suffix}"], result[f"scale{suffix}"]) == (key, scale), suffix
        assert 0 < result[f"key_strength{suffix}"] <= 1
    assert result["bpm"] == pytest.approx(bpm, abs=1.0)
    assert_plain(result)


def test_hpcp_peaks_on_the_tonic_counted_from_a():
    result = compute(audio_of(synth.chord_progression("C", "major", 120, 8.0)))
    hpcp = result["hpcp_mean"]
    assert len(hpcp) == 12 and max(hpcp) <= 1.0
    assert int(np.argmax(hpcp)) == 3  # A=0, A#=1, B=2, C=3


def test_summary_shapes_and_mfcc_covariance_layout():
    result = compute(audio_of(synth.chord_progression("A", "minor", 120, 6.0)))
    assert len(result["mfcc_mean"]) == 13
    assert len(result["mfcc_cov"]) == 13 * 14 // 2
    diagonal = [result["mfcc_cov"][i * 13 - i * (i - 1) // 2] for i in range(13)]
    assert all(v > 0 for v in diagonal)
    assert len(result["spectral_contrast_mean"]) == len(result["spectral_contrast_stdev"]) == 6
    assert len(result["librosa_spectral_contrast_mean"]) == 7
    assert len(result["tonnetz_mean"]) == 6
    assert result["danceability"] is None  # DFA needs 10 s or more
    assert_plain(result)


@pytest.mark.parametrize("dbfs", [0.0, -20.0])
def test_stereo_sine_loudness(dbfs):
    result = compute(audio_of(synth.sine(1000, dbfs, 4.0)))
    assert result["loudness_integrated_lufs"] == pytest.approx(dbfs, abs=0.5)
    assert result["loudness_range_lu"] == pytest.approx(0.0, abs=0.5)


@pytest.mark.parametrize("dbfs", [-23.0, -33.0])
def test_ebu_tech_3341_stereo_sine_reads_its_level(dbfs):
    """EBU Tech 3341 cases 1 and 2: a 1 kHz stereo sine at -23 / -33 dBFS reads -23 / -33 LUFS."""
    result = compute(audio_of(synth.sine(1000, dbfs, 20.0)))
    assert result["loudness_integrated_lufs"] == pytest.approx(dbfs, abs=0.1)
    assert result["loudness_range_lu"] == pytest.approx(0.0, abs=0.1)
    assert result["true_peak_dbtp"] == pytest.approx(dbfs, abs=0.1)
    assert result["dynamic_complexity_db"] < 1.0


def test_true_peak_sees_the_peak_between_samples():
    """EBU Tech 3341 true-peak style: fs/4 at 45 degrees puts every sample at 0.707 of the peak."""
    t = np.arange(int(2.0 * SR)) / SR
    x = (0.5 * np.sin(2 * np.pi * (SR / 4) * t + np.pi / 4)).astype(np.float32)
    x *= np.minimum(1.0, np.minimum(t, t[::-1]) / 0.1).astype(np.float32)
    sample_peak = 20 * np.log10(np.max(np.abs(x)))
    result = compute(audio_of(x))
    assert sample_peak == pytest.approx(-9.03, abs=0.05)
    assert result["true_peak_dbtp"] == pytest.approx(-6.02, abs=0.3)


def test_dynamic_complexity_grows_with_level_changes():
    steady = compute(audio_of(synth.white_noise(-20.0, 12.0)))
    alternating = np.concatenate(
        [synth.white_noise(db, 2.0, seed=i) for i, db in enumerate([-10, -40] * 3)]
    )
    varied = compute(audio_of(alternating))
    assert steady["dynamic_complexity_db"] < 1.0
    assert varied["dynamic_complexity_db"] > 5.0


def test_mono_file_is_measured_as_one_channel(tmp_path):
    import wave

    x = synth.sine(1000, -20.0, 4.0)
    path = tmp_path / "mono.wav"
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SR)
        f.writeframes(np.round(x * 32767).astype("<i2").tobytes())
    result = compute(decode(path))
    assert result["loudness_integrated_lufs"] == pytest.approx(-23.01, abs=0.5)
    dual_mono = compute(audio_of(x))
    assert result["loudness_integrated_lufs"] == pytest.approx(
        dual_mono["loudness_integrated_lufs"] - 3.01, abs=0.05
    )
    np.testing.assert_allclose(result["mfcc_mean"], dual_mono["mfcc_mean"], atol=0.5)


def test_centroid_tracks_spectral_balance():
    tone = compute(audio_of(synth.sine(1000, -20.0, 2.0)))["spectral_centroid_mean_hz"]
    noise = compute(audio_of(synth.white_noise(-20.0, 2.0)))["spectral_centroid_mean_hz"]
    assert tone == pytest.approx(1000, rel=0.05)
    assert noise == pytest.approx(SR / 4, rel=0.1)


def test_frame_statistics_of_a_tone_and_of_noise():
    tone = compute(audio_of(synth.sine(1000, -20.0, 3.0)))
    noise = compute(audio_of(synth.white_noise(-20.0, 3.0)))
    assert tone["zero_crossing_rate_mean"] == pytest.approx(2 * 1000 / SR, rel=0.03)
    assert noise["zero_crossing_rate_mean"] == pytest.approx(0.5, abs=0.02)
    assert tone["spectral_centroid_stdev_hz"] < 0.05 * tone["spectral_centroid_mean_hz"]
    assert noise["spectral_centroid_stdev_hz"] > tone["spectral_centroid_stdev_hz"]
    assert tone["spectral_rolloff_mean_hz"] == pytest.approx(1000, abs=30)
    assert noise["spectral_rolloff_mean_hz"] == pytest.approx(0.85 * SR / 2, rel=0.05)
    assert tone["spectral_flatness_mean"] < 0.05 < 0.5 < noise["spectral_flatness_mean"]
    assert tone["spectral_flux_mean"] < noise["spectral_flux_mean"]
    assert tone["zero_crossing_rate_stdev"] < 0.1 * tone["zero_crossing_rate_mean"]


def test_silent_stretches_do_not_drag_spectral_means():
    x = np.concatenate([synth.sine(1000, -20.0, 1.0), synth.silence(2.0)])
    result = compute(audio_of(x))
    assert result["spectral_centroid_mean_hz"] == pytest.approx(1000, rel=0.05)
    tone_only = compute(audio_of(synth.sine(1000, -20.0, 1.0)))
    np.testing.assert_allclose(result["mfcc_mean"], tone_only["mfcc_mean"], atol=5.0)


def test_other_sample_rates_are_resampled_once_and_reported_as_delivered(tmp_path):
    x = synth.chord_progression("E", "major", 120, 6.0, sr=48000)
    audio = decode(synth.write_audio(x, 48000, tmp_path / "e.flac", "flac"))
    result = compute(audio)
    assert result["sample_rate_hz"] == 48000.0
    assert result["duration_s"] == pytest.approx(6.0)
    assert result["bpm"] == pytest.approx(120, abs=2.0)
    assert (result["key"], result["scale"]) == ("E", "major")


def test_96khz_loudness_is_measured_after_resampling():
    """LoudnessEBUR128 itself yields NaN frames at 96 kHz; resampling must hide that."""
    result = compute(audio_of(synth.sine(1000, -20.0, 3.0, sr=96000), sr=96000))
    assert result["loudness_integrated_lufs"] == pytest.approx(-20.0, abs=0.5)


@pytest.mark.parametrize("seconds", [0.0, 0.2, 3.0])
def test_silence_is_undefined_not_invented(seconds):
    result = compute(audio_of(synth.silence(seconds)))
    assert result["duration_s"] == pytest.approx(seconds)
    assert result["sample_rate_hz"] == SR
    defined = {k for k, v in result.items() if v is not None}
    assert defined == {"duration_s", "sample_rate_hz"}
    assert_plain(result)


def test_signal_below_the_absolute_gate_has_no_loudness_but_keeps_timbre():
    """Essentia reports the -70 LUFS gate itself when every block is gated; that is not a level."""
    result = compute(audio_of(synth.white_noise(-85.0, 3.0)))
    assert result["loudness_integrated_lufs"] is None
    assert result["loudness_range_lu"] is None
    assert result["spectral_centroid_mean_hz"] == pytest.approx(SR / 4, rel=0.1)


@pytest.mark.parametrize("seconds", [0.01, 0.3, 0.9])
def test_very_short_input_does_not_crash(seconds):
    result = compute(audio_of(synth.click_track(120, seconds)))
    assert_plain(result)
    assert result["duration_s"] == pytest.approx(seconds, abs=1e-4)
    if seconds < 0.4:
        assert result["loudness_integrated_lufs"] is None
    else:
        assert result["loudness_integrated_lufs"] is not None
    assert result["loudness_range_lu"] is None
    assert result["spectral_centroid_mean_hz"] > 0


def test_fields_match_the_shard_schema():
    fields = {f["name"]: f for f in json.loads(SCHEMA.read_text())["fields"]}
    for name, column in DESCRIPTOR_FIELDS.items():
        assert fields[name]["type"] == column.type, name
        assert fields[name].get("unit", "") == column.unit, name
    assert set(DESCRIPTOR_FIELDS) <= set(fields)
    assert DESCRIPTOR_SET_VERSION == "essentia-full-1"
