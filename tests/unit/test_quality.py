"""Each defect trips exactly its own check, and clean music trips none."""

from __future__ import annotations

import math

import numpy as np
import pydantic
import pytest

from corpus_demo import synth
from pipeline.audio.decode import DecodedAudio
from pipeline.audio.quality import MEASURES, gate, measure
from pipeline.licensing.policy import AudioThresholds
from pipeline.reasons import Reason

SR = 44100
DEFAULTS = AudioThresholds().model_dump()


def audio_of(samples: np.ndarray, sr: int = SR, channels: int = 2) -> DecodedAudio:
    stereo = synth.to_stereo(samples)
    if channels == 1:
        stereo[:, 1] = 0.0
    return DecodedAudio(stereo, float(sr), channels, "pcm_f32le", 0, len(stereo) / sr)


def reasons(samples: np.ndarray, sr: int = SR, **overrides) -> list[Reason]:
    limits = {**DEFAULTS, **overrides}
    measures = measure(audio_of(samples, sr), limits["silence_threshold_dbfs"])
    return [r for r, _ in gate(measures, limits)]


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    return synth.chord_progression("A", "minor", 120, 6.0, dbfs=-1.0)


def _low_passed_noise(cutoff_hz: float) -> np.ndarray:
    noise = synth.white_noise(-20.0, 6.0)
    spectrum = np.fft.rfft(noise)
    spectrum[np.fft.rfftfreq(len(noise), 1 / SR) > cutoff_hz] = 0
    return np.fft.irfft(spectrum, len(noise)).astype(np.float32)


def test_clean_music_trips_nothing_and_reports_every_measure(music):
    measures = measure(audio_of(music))
    assert set(measures) == set(MEASURES)
    assert gate(measures, DEFAULTS) == []
    assert measures["peak_dbfs"] == pytest.approx(-1.0, abs=1e-3)
    assert measures["silence_ratio"] == 0.0 and measures["clipped_ratio"] == 0.0
    assert measures["bandwidth_hz"] > 20000
    for value in measures.values():
        assert type(value) in (float, int) and math.isfinite(value)


@pytest.mark.parametrize("kind", ["digital silence", "mostly silent"])
def test_silence_trips_only_the_silence_check(music, kind):
    if kind == "digital silence":
        x = synth.silence(6.0)
    else:
        x = np.concatenate([synth.silence(5.7), music[: int(0.3 * SR)]])
    assert reasons(x) == [Reason.AUDIO_SILENT]
    assert measure(audio_of(x))["silence_ratio"] > 0.9


def test_quiet_but_audible_music_is_not_silent(music):
    assert reasons(music * synth.db_to_amplitude(-30)) == []


@pytest.mark.parametrize("after_gain_db", [0.0, -6.0])
def test_hard_clipping_trips_only_the_clipping_check_even_when_turned_down(music, after_gain_db):
    clipped = np.clip(music * 4, -1, 1) * synth.db_to_amplitude(after_gain_db)
    assert reasons(clipped.astype(np.float32)) == [Reason.AUDIO_CLIPPED]
    assert measure(audio_of(clipped))["clipped_ratio"] > 0.05


def test_a_loud_limited_master_is_not_clipped(music):
    loud = np.tanh(music * 4)
    loud = (loud / np.max(np.abs(loud)) * synth.db_to_amplitude(-0.1)).astype(np.float32)
    assert reasons(loud) == []
    assert measure(audio_of(loud))["clipped_ratio"] < 0.001


@pytest.mark.parametrize("hz", [20, 50, 100])
def test_full_scale_bass_sine_is_not_clipped(hz):
    assert measure(audio_of(synth.sine(hz, 0.0, 3.0)))["clipped_ratio"] < 0.005


def test_low_passed_noise_trips_only_the_bandwidth_check():
    x = _low_passed_noise(4000)
    assert reasons(x) == [Reason.AUDIO_LOW_BANDWIDTH]
    assert measure(audio_of(x))["bandwidth_hz"] == pytest.approx(4000, rel=0.05)


def test_upsampled_audio_trips_only_the_bandwidth_check():
    """An 11.025 kHz recording resampled to 44.1 kHz has nothing above its old 5.5 kHz Nyquist."""
    import essentia.standard as es

    low_rate = synth.chord_progression("A", "minor", 120, 6.0, sr=11025)
    upsampled = es.Resample(inputSampleRate=11025, outputSampleRate=SR)(low_rate)
    assert reasons(upsampled) == [Reason.AUDIO_LOW_BANDWIDTH]
    assert measure(audio_of(upsampled))["bandwidth_hz"] < 5600


def test_wideband_content_passes_a_high_bandwidth_bar():
    assert reasons(_low_passed_noise(16000), min_bandwidth_hz=15000) == []
    assert reasons(_low_passed_noise(16000), min_bandwidth_hz=17000) == [Reason.AUDIO_LOW_BANDWIDTH]


def test_duration_bounds(music):
    assert reasons(music[: SR // 2]) == [Reason.AUDIO_TOO_SHORT]
    assert reasons(music, max_duration_s=5.0) == [Reason.AUDIO_TOO_LONG]
    assert reasons(music, min_duration_s=6.0, max_duration_s=6.0) == []


def test_sample_rate_bounds():
    x = synth.chord_progression("A", "minor", 120, 3.0, sr=16000)
    problems = gate(measure(audio_of(x, sr=16000)), DEFAULTS)
    assert [r for r, _ in problems] == [Reason.AUDIO_SAMPLE_RATE]
    assert "sample rate 16000 Hz" in problems[0][1]
    y = synth.chord_progression("A", "minor", 120, 3.0, sr=32000)
    assert reasons(y, sr=32000, allowed_sample_rates_hz=[44100, 48000]) == [
        Reason.AUDIO_SAMPLE_RATE
    ]
    assert reasons(y, sr=32000, allowed_sample_rates_hz=[32000, 44100]) == []


def test_dc_offset_is_measured_per_channel(music):
    left = music + 0.1
    right = music - 0.02
    measures = measure(audio_of(np.stack([left, right], axis=1).astype(np.float32)))
    assert measures["dc_offset"] == pytest.approx(0.1, abs=0.002)


def test_mono_is_measured_on_its_one_channel(music):
    x = np.concatenate([music, synth.silence(4.0)])
    mono = measure(audio_of(x, channels=1))
    stereo = measure(audio_of(x))
    assert mono["channels"] == 1
    assert mono["silence_ratio"] == pytest.approx(stereo["silence_ratio"])
    assert mono["clipped_ratio"] == stereo["clipped_ratio"] == 0.0


def test_silence_level_is_the_policy_s(music):
    quiet = music * synth.db_to_amplitude(-45)
    assert reasons(quiet) == []
    assert reasons(quiet, silence_threshold_dbfs=-40.0) == [Reason.AUDIO_SILENT]


def test_every_failed_check_is_reported_at_once():
    x = synth.silence(0.5)
    assert reasons(x) == [Reason.AUDIO_TOO_SHORT, Reason.AUDIO_SILENT]


def test_unknown_threshold_names_are_refused(music):
    with pytest.raises(pydantic.ValidationError):
        gate(measure(audio_of(music)), {"max_cliped_ratio": 0.5})
