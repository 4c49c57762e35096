"""The `essentia-basic-1` descriptor set: loudness, tempo, key and timbre summaries per track.

Everything is measured on the already-decoded signal, resampled once to 44.1 kHz when needed:
RhythmExtractor2013 assumes 44.1 kHz, and LoudnessEBUR128 in this Essentia build returns NaN
frames at 96 kHz. Values Essentia would still invent for signals where they mean nothing (tempo
of silence, loudness of under one gating block) are returned as None, so shards hold nulls
rather than plausible-looking noise. Changing any computation here requires a new
DESCRIPTOR_SET_VERSION.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.audio.decode import DecodedAudio

DESCRIPTOR_SET_VERSION = "essentia-basic-1"

DESCRIPTOR_FIELDS: dict[str, tuple[str, str]] = {
    "duration_s": ("float64", "s"),
    "sample_rate_hz": ("float64", "Hz"),
    "loudness_integrated_lufs": ("float64", "LUFS"),
    "loudness_range_lu": ("float64", "LU"),
    "bpm": ("float64", "BPM"),
    "key": ("string", ""),
    "scale": ("string", ""),
    "key_strength": ("float64", ""),
    "spectral_centroid_mean_hz": ("float64", "Hz"),
    "mfcc_mean": ("list<float32>", ""),
}

ANALYSIS_RATE = 44100.0
MIN_TEMPO, MAX_TEMPO = 40, 208
N_MFCC = 13
FRAME_SIZE, HOP_SIZE = 2048, 1024

# One 16-bit LSB: nothing quieter survives a CD-quality delivery, so treat it as digital silence.
SILENCE_PEAK = 2.0**-15
# EBU R128 / BS.1770: integrated loudness is gated over 400 ms blocks, LRA over 3 s windows, and
# Essentia reports the -70 LUFS absolute gate itself when every block was gated away.
GATING_BLOCK_S = 0.4
SHORT_TERM_WINDOW_S = 3.0
ABSOLUTE_GATE_LUFS = -70.0


def compute(audio: DecodedAudio) -> dict:
    """All DESCRIPTOR_FIELDS as plain Python values; None where the descriptor is undefined."""
    stereo = _at_analysis_rate(audio)
    mono = stereo[:, 0].copy() if audio.channels == 1 else stereo.mean(axis=1, dtype=np.float32)
    result: dict = dict.fromkeys(DESCRIPTOR_FIELDS)
    result["duration_s"] = float(audio.duration_s)
    result["sample_rate_hz"] = float(audio.sample_rate)
    if mono.size == 0 or float(np.max(np.abs(mono))) < SILENCE_PEAK:
        return result
    result.update(_loudness(stereo))
    result["bpm"] = _bpm(mono)
    result.update(_key(mono))
    result.update(_spectral(mono))
    return result


def _at_analysis_rate(audio: DecodedAudio) -> np.ndarray:
    """Stereo float32 at 44.1 kHz. Mono sources keep their silent right channel, which is
    exactly the single-channel case of BS.1770 (a dual-mono copy would read 3 LU louder)."""
    samples = np.asarray(audio.samples, dtype=np.float32)
    if audio.sample_rate == ANALYSIS_RATE or samples.shape[0] == 0:
        return samples
    import essentia.standard as es

    def resample(channel: np.ndarray) -> np.ndarray:
        resampler = es.Resample(inputSampleRate=audio.sample_rate, outputSampleRate=ANALYSIS_RATE)
        return resampler(np.ascontiguousarray(channel))

    left = resample(samples[:, 0])
    right = np.zeros_like(left) if audio.channels == 1 else resample(samples[:, 1])
    n = min(len(left), len(right))
    return np.ascontiguousarray(np.stack([left[:n], right[:n]], axis=1), dtype=np.float32)


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _loudness(stereo: np.ndarray) -> dict:
    import essentia.standard as es

    seconds = stereo.shape[0] / ANALYSIS_RATE
    if seconds < GATING_BLOCK_S:
        return {}
    _momentary, _short_term, integrated, loudness_range = es.LoudnessEBUR128(
        sampleRate=ANALYSIS_RATE
    )(stereo)
    integrated = _finite(integrated)
    if integrated is None or integrated <= ABSOLUTE_GATE_LUFS:
        return {}
    lra = _finite(loudness_range) if seconds >= SHORT_TERM_WINDOW_S else None
    return {"loudness_integrated_lufs": integrated, "loudness_range_lu": lra}


def _bpm(mono: np.ndarray) -> float | None:
    """Degara tempo from a fresh extractor: instances carry state across calls (essentia#1324)."""
    import essentia.standard as es

    extractor = es.RhythmExtractor2013(method="degara", minTempo=MIN_TEMPO, maxTempo=MAX_TEMPO)
    try:
        bpm = _finite(extractor(mono)[0])
    except RuntimeError:
        return None
    if bpm is None or not MIN_TEMPO <= bpm <= MAX_TEMPO:
        return None
    return bpm


def _key(mono: np.ndarray) -> dict:
    """KeyExtractor runs its own tuned HPCP chain; its strength is 0 when it found no pitch."""
    import essentia.standard as es

    try:
        key, scale, strength = es.KeyExtractor(sampleRate=ANALYSIS_RATE)(mono)
    except RuntimeError:
        return {}
    strength = _finite(strength)
    if strength is None or strength <= 0 or scale not in ("major", "minor"):
        return {}
    return {"key": str(key), "scale": str(scale), "key_strength": strength}


def _spectral(mono: np.ndarray) -> dict:
    """Spectral centroid and MFCC means from one shared STFT, over frames that are not silent."""
    import essentia.standard as es

    window = es.Windowing(type="hann", size=FRAME_SIZE)
    spectrum = es.Spectrum(size=FRAME_SIZE)
    mfcc = es.MFCC(
        inputSize=FRAME_SIZE // 2 + 1, sampleRate=ANALYSIS_RATE, numberCoefficients=N_MFCC
    )
    centroid = es.Centroid(range=ANALYSIS_RATE / 2)
    centroids, coefficients = [], []
    for frame in es.FrameGenerator(mono, frameSize=FRAME_SIZE, hopSize=HOP_SIZE):
        magnitudes = spectrum(window(frame))
        if float(np.max(magnitudes)) <= 0.0:
            continue
        centroids.append(centroid(magnitudes))
        coefficients.append(mfcc(magnitudes)[1])
    if not centroids:
        return {}
    return {
        "spectral_centroid_mean_hz": _finite(np.mean(centroids)),
        "mfcc_mean": [float(v) for v in np.mean(coefficients, axis=0)],
    }
