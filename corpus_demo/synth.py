"""Deterministic test and demo signals whose tempo, key and loudness are known in advance.

Generators return mono float32 1-D arrays; `to_stereo` makes the (n, 2) layout that Essentia's
AudioWriter/AudioLoader use. `write_audio` accepts either.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FORMATS = ("wav", "flac", "ogg", "mp3")
MP3_BITRATES = (32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 192, 224, 256, 320)

_NATURALS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTALS = {"": 0, "#": 1, "b": -1}
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}


def _n(seconds: float, sr: int) -> int:
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds}")
    return int(round(seconds * sr))


def db_to_amplitude(dbfs: float) -> float:
    """Peak amplitude of a sine at `dbfs`, full scale meaning a peak of 1.0."""
    return float(10.0 ** (dbfs / 20.0))


def silence(seconds: float, sr: int = 44100) -> np.ndarray:
    return np.zeros(_n(seconds, sr), dtype=np.float32)


def sine(freq_hz: float, dbfs: float, seconds: float, sr: int = 44100) -> np.ndarray:
    """Sine whose peak is `dbfs` relative to full scale (0 dBFS = peak 1.0)."""
    t = np.arange(_n(seconds, sr)) / sr
    return (db_to_amplitude(dbfs) * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def white_noise(dbfs: float, seconds: float, sr: int = 44100, seed: int = 0) -> np.ndarray:
    """Gaussian noise with RMS at `dbfs`, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(_n(seconds, sr))
    return (db_to_amplitude(dbfs) * noise).astype(np.float32)


def to_stereo(samples: np.ndarray) -> np.ndarray:
    """(n, 2) float32, duplicating a mono signal; stereo float32 input is returned as is."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 1:
        return np.ascontiguousarray(np.stack([x, x], axis=1))
    if x.ndim == 2 and x.shape[1] == 2:
        return np.ascontiguousarray(x)
    raise ValueError(f"expected mono (n,) or stereo (n, 2) samples, got shape {x.shape}")


def _click(sr: int) -> np.ndarray:
    t = np.arange(int(0.03 * sr)) / sr
    return np.sin(2 * np.pi * 1500 * t) * np.exp(-t / 0.004)


def _kick(sr: int) -> np.ndarray:
    t = np.arange(int(0.15 * sr)) / sr
    phase = 2 * np.pi * (50 * t + (150 - 50) * 0.03 * (1 - np.exp(-t / 0.03)))
    return np.sin(phase) * np.exp(-t / 0.06)


def _place(out: np.ndarray, hit: np.ndarray, onsets: np.ndarray) -> None:
    for start in onsets:
        end = min(len(out), start + len(hit))
        out[start:end] += hit[: end - start]


def _beat_seconds(bpm: float) -> float:
    if not bpm > 0:
        raise ValueError(f"bpm must be > 0, got {bpm}")
    return 60.0 / bpm


def _beat_onsets(bpm: float, n: int, sr: int) -> np.ndarray:
    return np.round(np.arange(0, n / sr, _beat_seconds(bpm)) * sr).astype(int)


def click_track(bpm: float, seconds: float, sr: int = 44100, dbfs: float = -6.0) -> np.ndarray:
    """Metronome clicks (1.5 kHz, 30 ms decay) on every beat, first beat at t=0."""
    n = _n(seconds, sr)
    out = np.zeros(n)
    _place(out, _click(sr), _beat_onsets(bpm, n, sr))
    return (db_to_amplitude(dbfs) * out).astype(np.float32)


def _pitch_class(key: str) -> int:
    """0-11 from C for names like "A", "C#" or "Bb", so any name Essentia reports is accepted."""
    letter, accidental = key[:1], key[1:]
    if letter not in _NATURALS or accidental not in _ACCIDENTALS:
        raise ValueError(f"unknown key {key!r}")
    return (_NATURALS[letter] + _ACCIDENTALS[accidental]) % 12


def _midi_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def _tone(freq: float, n: int, sr: int) -> np.ndarray:
    """A plucked, harmonic-rich note, so pitch-class profiles see the chord tones clearly."""
    t = np.arange(n) / sr
    partials = sum(np.sin(2 * np.pi * k * freq * t) / k for k in range(1, 5) if k * freq < sr / 2)
    attack = np.minimum(1.0, t / 0.01)
    return partials * attack * np.exp(-t / 0.8)


def chord_progression(
    key: str,
    scale: str,
    bpm: float,
    seconds: float,
    sr: int = 44100,
    dbfs: float = -12.0,
    seed: int = 0,
) -> np.ndarray:
    """I-IV-V-I (i-iv-V-i in minor) triads with bass, a kick on every beat, one chord per bar.

    The minor V is major (harmonic minor), as in common-practice cadences. Quiet seeded noise
    keeps the signal from being unnaturally clean. Peak is normalised to `dbfs`.
    """
    pitch_class = _pitch_class(key)
    if scale not in _SCALES:
        raise ValueError(f"scale must be 'major' or 'minor', got {scale!r}")
    bar = int(round(4 * _beat_seconds(bpm) * sr))
    n = _n(seconds, sr)
    out = np.zeros(n)
    if n == 0:
        return out.astype(np.float32)
    tonic = 48 + pitch_class
    steps = _SCALES[scale]
    degrees = (0, 3, 4, 0)
    for i, start in enumerate(range(0, n, bar)):
        degree = degrees[i % len(degrees)]
        root = tonic + steps[degree]
        third = tonic + steps[(degree + 2) % 7] + (12 if degree + 2 >= 7 else 0)
        fifth = tonic + steps[(degree + 4) % 7] + (12 if degree + 4 >= 7 else 0)
        if scale == "minor" and degree == 4:
            third += 1
        length = min(bar, n - start)
        for midi in (root, third, fifth, root + 12):
            out[start : start + length] += 0.25 * _tone(_midi_hz(midi), length, sr)
        out[start : start + length] += 0.4 * _tone(_midi_hz(root - 12), length, sr)
    _place(out, 0.8 * _kick(sr), _beat_onsets(bpm, n, sr))
    out += 0.002 * np.random.default_rng(seed).standard_normal(n)
    out *= db_to_amplitude(dbfs) / np.max(np.abs(out))
    return out.astype(np.float32)


def write_audio(
    samples: np.ndarray, sr: float, path: str | Path, fmt: str, bitrate: int = 192
) -> Path:
    """Encode a stereo file (mono input is duplicated).

    Essentia's AudioWriter does wav, flac and mp3; `bitrate` (kbps) is passed through, but
    this Essentia build ignores it and always encodes MP3 at 192 kbps (MTG/essentia#1228).
    Its "ogg" is FLAC inside Ogg, which libsndfile (hence `datasets.Audio`) cannot read, so
    "ogg" is written as Ogg Vorbis through soundfile instead, as real deliveries are.
    """
    import essentia.standard as es

    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if bitrate not in MP3_BITRATES:
        raise ValueError(f"bitrate must be one of {MP3_BITRATES}, got {bitrate}")
    path = Path(path)
    if fmt == "ogg":
        import soundfile

        soundfile.write(str(path), to_stereo(samples), int(sr), format="OGG", subtype="VORBIS")
        return path
    writer = es.AudioWriter(filename=str(path), format=fmt, sampleRate=float(sr), bitrate=bitrate)
    writer(to_stereo(samples))
    return path
