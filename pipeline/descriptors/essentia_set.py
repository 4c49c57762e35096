"""The `essentia-full-1` descriptor set: what MIR users expect from Essentia's MusicExtractor.

Everything is measured on the one decoded signal, resampled once to 44.1 kHz when needed:
RhythmExtractor2013 and OnsetRate assume 44.1 kHz, and LoudnessEBUR128 in this Essentia build
returns NaN frames at 96 kHz. Frame descriptors share two Hann STFTs, the frame sizes
MusicExtractor uses: 2048/1024 for timbre (Essentia MFCC and spectral contrast, librosa
spectral contrast, numpy centroid, roll-off, flux, flatness, zero crossings) and 4096/2048 for
tonality (Essentia HPCP -> Key with four profiles, librosa chroma -> tonnetz). Digitally silent
frames are left out of frame statistics. Values that would mean nothing (tempo of a steady
tone, loudness of under one gating block) are None, never NaN. Changing any computation here
requires a new DESCRIPTOR_SET_VERSION.

Conventions: `hpcp_mean` starts at A (Essentia, 440 Hz reference); `mfcc_cov` is the upper
triangle, diagonal included, of the 13x13 MFCC covariance, row by row (91 values); `key`,
`scale` and `key_strength` use Essentia's default `bgate` profile, the `_temperley`,
`_krumhansl` and `_edma` columns the profiles MusicExtractor reports; `bpm_confidence` is ours
(see `_beat_confidence`), because degara, three times faster than multifeature, has none.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.audio.decode import DecodedAudio
from pipeline.shards.columns import Column

DESCRIPTOR_SET_VERSION = "essentia-full-1"

KEY_PROFILES = ("temperley", "krumhansl", "edma")
N_MFCC = 13
N_CONTRAST_BANDS = 6

DESCRIPTOR_FIELDS: dict[str, Column] = {
    "duration_s": Column("float64", "s"),
    "sample_rate_hz": Column("float64", "Hz", "as delivered"),
    "loudness_integrated_lufs": Column("float64", "LUFS", "EBU R128 integrated loudness"),
    "loudness_range_lu": Column("float64", "LU", "EBU R128 loudness range (LRA)"),
    "true_peak_dbtp": Column(
        "float64", "dBTP", "ITU-R BS.1770-4 true peak, 4x oversampled at 44.1 kHz"
    ),
    "dynamic_complexity_db": Column(
        "float64",
        "dB",
        "mean absolute deviation from the global loudness (Essentia DynamicComplexity)",
    ),
    "bpm": Column("float64", "BPM", "RhythmExtractor2013 (degara); null under 4 onsets"),
    "bpm_confidence": Column(
        "float64", "", "0-1: share of onsets followed by another one beat later, chance-corrected"
    ),
    "beat_count": Column("int64", "beats", "beats tracked"),
    "onset_rate_per_s": Column("float64", "1/s", "onsets per second (Essentia OnsetRate)"),
    "danceability": Column("float64", "", "Essentia DFA danceability, about 0-3; null under 10 s"),
    "key": Column("string", "", "tonic, e.g. A or C#; Essentia bgate profile"),
    "scale": Column("string", "", "major | minor"),
    "key_strength": Column("float64", "", "0-1"),
    **{
        f"{name}_{profile}": Column(kind, "", f"{meaning}, {profile} profile")
        for profile in KEY_PROFILES
        for name, kind, meaning in (
            ("key", "string", "tonic"),
            ("scale", "string", "major | minor"),
            ("key_strength", "float64", "0-1"),
        )
    },
    "hpcp_mean": Column(
        "list<float32>", "", "12 HPCP bins from A, per-frame unitMax, mean over non-silent frames"
    ),
    "mfcc_mean": Column("list<float32>", "", "13 MFCC coefficient means"),
    "mfcc_cov": Column(
        "list<float32>",
        "",
        "upper triangle incl. diagonal of the 13x13 MFCC covariance, row-major (91)",
    ),
    "spectral_centroid_mean_hz": Column("float64", "Hz"),
    "spectral_centroid_stdev_hz": Column("float64", "Hz"),
    "spectral_rolloff_mean_hz": Column("float64", "Hz", "85% of spectral energy below"),
    "spectral_rolloff_stdev_hz": Column("float64", "Hz"),
    "spectral_flux_mean": Column(
        "float64", "", "L2 norm of frame-to-frame magnitude spectrum change"
    ),
    "spectral_flux_stdev": Column("float64"),
    "spectral_flatness_mean": Column(
        "float64", "", "0-1, geometric / arithmetic mean of the magnitude spectrum"
    ),
    "spectral_flatness_stdev": Column("float64"),
    "spectral_contrast_mean": Column(
        "list<float32>", "", "6 bands, Essentia SpectralContrast coefficients"
    ),
    "spectral_contrast_stdev": Column("list<float32>", "", "6 bands"),
    "zero_crossing_rate_mean": Column("float64", "1/sample", "sign changes per sample"),
    "zero_crossing_rate_stdev": Column("float64", "1/sample"),
    "librosa_spectral_contrast_mean": Column(
        "list<float32>", "dB", "7 values, librosa.feature.spectral_contrast on the shared STFT"
    ),
    "tonnetz_mean": Column(
        "list<float32>", "", "6 tonal centroid dimensions, librosa tonnetz of chroma_stft"
    ),
}

ANALYSIS_RATE = 44100.0
MIN_TEMPO, MAX_TEMPO = 40, 208
MIN_ONSETS = 4
FRAME_SIZE, HOP_SIZE = 2048, 1024
TONAL_FRAME_SIZE, TONAL_HOP_SIZE = 4096, 2048
HPCP_MIN_HZ, HPCP_MAX_HZ = 25, 3500
FRAMES_PER_BLOCK = 1024
TRUE_PEAK_CHUNK = 1 << 18
ROLLOFF_SHARE = 0.85

# One 16-bit LSB: nothing quieter survives a CD-quality delivery, so treat it as digital silence.
SILENCE_PEAK = 2.0**-15
# EBU R128 / BS.1770: integrated loudness is gated over 400 ms blocks, LRA over 3 s windows, and
# Essentia reports the -70 LUFS absolute gate itself when every block was gated away.
GATING_BLOCK_S = 0.4
SHORT_TERM_WINDOW_S = 3.0
ABSOLUTE_GATE_LUFS = -70.0
# Danceability's DFA needs a few of its longest segments (8.8 s) to say anything.
MIN_DANCEABILITY_S = 10.0

# ITU-R BS.1770-4 Annex 2: 48-tap, 4-phase interpolator for true peak. The prototype is
# symmetric, so phases 3 and 2 are phases 0 and 1 reversed.
_TRUE_PEAK_PHASE_0 = (
    0.0017089843750, 0.0109863281250, -0.0196533203125, 0.0332031250000,
    -0.0594482421875, 0.1373291015625, 0.9721679687500, -0.1022949218750,
    0.0476074218750, -0.0266113281250, 0.0148925781250, -0.0083007812500,
)  # fmt: skip
_TRUE_PEAK_PHASE_1 = (
    -0.0291748046875, 0.0292968750000, -0.0517578125000, 0.0891113281250,
    -0.1665039062500, 0.4650878906250, 0.7797851562500, -0.2003173828125,
    0.1015625000000, -0.0582275390625, 0.0330810546875, -0.0189208984375,
)  # fmt: skip


def compute(audio: DecodedAudio) -> dict:
    """All DESCRIPTOR_FIELDS as plain Python values; None where the descriptor is undefined."""
    stereo = _at_analysis_rate(audio)
    mono = stereo[:, 0].copy() if audio.channels == 1 else stereo.mean(axis=1, dtype=np.float32)
    result: dict = dict.fromkeys(DESCRIPTOR_FIELDS)
    result["duration_s"] = float(audio.duration_s)
    result["sample_rate_hz"] = float(audio.sample_rate)
    if mono.size == 0 or float(np.max(np.abs(mono))) < SILENCE_PEAK:
        return result
    channels = stereo[:, :1] if audio.channels == 1 else stereo
    result.update(_loudness(stereo))
    result["true_peak_dbtp"] = _true_peak_dbtp(channels)
    result.update(_dynamics(mono))
    result.update(_rhythm(mono))
    result.update(_frames(mono))
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


def _floats(values) -> list[float] | None:
    values = [float(v) for v in np.asarray(values).ravel()]
    return values if values and all(math.isfinite(v) for v in values) else None


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


def _true_peak_dbtp(channels: np.ndarray) -> float | None:
    """BS.1770 true peak: 4x polyphase interpolation, never below the sample peak.

    TruePeakDetector gives the same reading but costs ~1 s per 30 s channel (libsamplerate);
    the Annex 2 filter through scipy's polyphase upfirdn costs a tenth of that. Chunked, so an
    hour of audio does not need a 4x oversampled copy (2.5 GB a channel) at once: each chunk
    overlaps its neighbours by one filter length and keeps only the outputs it computed from
    real samples, so the result equals the unchunked one.
    """
    from scipy.signal import upfirdn

    phase0, phase1 = np.array(_TRUE_PEAK_PHASE_0), np.array(_TRUE_PEAK_PHASE_1)
    prototype = np.stack([phase0, phase1, phase1[::-1], phase0[::-1]], axis=1).ravel()
    prototype = prototype.astype(np.float32)
    taps = len(_TRUE_PEAK_PHASE_0)
    n = channels.shape[0]
    peak = float(np.max(np.abs(channels)))
    for channel in channels.T:
        for start in range(0, n, TRUE_PEAK_CHUNK):
            low, high = max(0, start - taps), min(n, start + TRUE_PEAK_CHUNK + taps)
            out = upfirdn(prototype, np.ascontiguousarray(channel[low:high]), up=4)
            first = 0 if low == 0 else len(prototype) - 1
            last = len(out) if high == n else 4 * (high - low)
            peak = max(peak, float(np.max(np.abs(out[first:last]))))
    return _finite(20 * math.log10(peak)) if peak > 0 else None


def _dynamics(mono: np.ndarray) -> dict:
    import essentia.standard as es

    complexity, _loudness_db = es.DynamicComplexity(sampleRate=ANALYSIS_RATE)(mono)
    result = {"dynamic_complexity_db": _finite(complexity)}
    if len(mono) >= MIN_DANCEABILITY_S * ANALYSIS_RATE:
        result["danceability"] = _finite(es.Danceability(sampleRate=ANALYSIS_RATE)(mono)[0])
    return result


def _rhythm(mono: np.ndarray) -> dict:
    """Degara tempo and beats, from a fresh extractor: instances carry state across calls
    (essentia#1324). Degara costs a third of multifeature, which also fails on multi-hour input
    (essentia#1528), but has no confidence of its own, so `bpm_confidence` is measured against
    the onsets OnsetRate finds (see `_beat_confidence`). Under MIN_ONSETS onsets there is no
    tempo to speak of: bpm and beats are None and the confidence 0."""
    import essentia.standard as es

    try:
        onsets, rate = es.OnsetRate()(mono)
    except RuntimeError:
        return {}
    result = {"onset_rate_per_s": _finite(rate)}
    if len(onsets) < MIN_ONSETS:
        return {**result, "bpm_confidence": 0.0}
    extractor = es.RhythmExtractor2013(method="degara", minTempo=MIN_TEMPO, maxTempo=MAX_TEMPO)
    try:
        bpm, ticks, _confidence, _estimates, _intervals = extractor(mono)
    except RuntimeError:
        return result
    bpm = _finite(bpm)
    if bpm is None or not MIN_TEMPO <= bpm <= MAX_TEMPO:
        return result
    return {
        **result,
        "bpm": bpm,
        "beat_count": len(ticks),
        "bpm_confidence": _beat_confidence(onsets, bpm, len(mono) / ANALYSIS_RATE),
    }


def _beat_confidence(onsets: np.ndarray, bpm: float, seconds: float) -> float:
    """Share of onsets followed by another onset one beat period later (within 5 %, at least
    35 ms), rescaled so that onsets at random times at the same rate score 0 and a strict pulse
    1: (share - chance) / (1 - chance), chance = 1 - exp(-2 * tolerance * onset rate)."""
    onsets = np.sort(np.asarray(onsets, dtype=np.float64))
    period = 60.0 / bpm
    tolerance = max(0.05 * period, 0.035)
    starts = onsets[onsets + period + tolerance <= seconds]
    if len(starts) == 0:
        return 0.0
    following = np.searchsorted(onsets, starts + period - tolerance)
    found = following < len(onsets)
    found[found] &= onsets[following[found]] <= starts[found] + period + tolerance
    chance = 1.0 - math.exp(-2.0 * tolerance * len(onsets) / seconds)
    return max(0.0, (float(found.mean()) - chance) / (1.0 - chance))


def _key(hpcp_mean: np.ndarray, profile: str) -> tuple[str, str, float] | None:
    import essentia.standard as es

    try:
        key, scale, strength, _relative = es.Key(
            profileType=profile, pcpSize=12, usePolyphony=False, useThreeChords=False
        )(hpcp_mean)
    except RuntimeError:
        return None
    strength = _finite(strength)
    if strength is None or strength <= 0 or scale not in ("major", "minor"):
        return None
    return str(key), str(scale), strength


def _stats(name: str, values: list[np.ndarray], unit: str = "") -> dict:
    series = np.concatenate(values).astype(np.float64) if values else np.zeros(0)
    if series.size == 0:
        return {}
    return {
        f"{name}_mean{unit}": _finite(series.mean()),
        f"{name}_stdev{unit}": _finite(series.std()),
    }


def _frames(mono: np.ndarray) -> dict:
    """Frame statistics from two STFTs: 2048/1024 for timbre and 4096/2048 for tonality, the
    frame sizes MusicExtractor uses (2048 cannot resolve a third in the bass register)."""
    result = _timbre(mono)
    if result:
        result.update(_tonality(mono))
    return result


def _spectra(mono: np.ndarray, frame_size: int, hop_size: int):
    """(frames, magnitude spectra) of the non-silent frames, block by block to bound memory.

    Hann-windowed and scaled like Essentia's Windowing + Spectrum, so Essentia's spectral
    algorithms see the magnitudes they expect."""
    from scipy.fft import rfft

    window = np.hanning(frame_size + 1)[:frame_size]
    window = (2 * window / window.sum()).astype(np.float32)
    for block in _frame_blocks(mono, frame_size, hop_size):
        block = block[np.max(np.abs(block), axis=1) >= SILENCE_PEAK]
        if len(block):
            yield block, np.abs(rfft(block * window, axis=1))


def _timbre(mono: np.ndarray) -> dict:
    import essentia.standard as es
    import librosa

    bins = FRAME_SIZE // 2 + 1
    freqs = np.linspace(0, ANALYSIS_RATE / 2, bins)
    mfcc = es.MFCC(inputSize=bins, sampleRate=ANALYSIS_RATE, numberCoefficients=N_MFCC)
    contrast = es.SpectralContrast(
        frameSize=FRAME_SIZE, sampleRate=ANALYSIS_RATE, numberBands=N_CONTRAST_BANDS
    )
    series: dict[str, list] = {k: [] for k in ("centroid", "rolloff", "flux", "flatness", "zcr")}
    mfccs, contrasts, lr_contrasts = [], [], []
    previous = None
    for frames, spectra in _spectra(mono, FRAME_SIZE, HOP_SIZE):
        signs = np.signbit(frames)
        series["zcr"].append(np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1) / FRAME_SIZE)
        total = spectra.sum(axis=1, dtype=np.float64)
        usable = total > 0
        series["centroid"].append((spectra @ freqs)[usable] / total[usable])
        cumulative = np.cumsum(spectra.astype(np.float64) ** 2, axis=1)
        rolloff_bin = np.argmax(cumulative >= ROLLOFF_SHARE * cumulative[:, -1:], axis=1)
        series["rolloff"].append(freqs[rolloff_bin][usable])
        chained = spectra if previous is None else np.vstack([previous, spectra])
        series["flux"].append(np.linalg.norm(np.diff(chained, axis=0), axis=1))
        previous = spectra[-1:]
        logs = np.log(np.maximum(spectra[usable], 1e-20).astype(np.float64))
        series["flatness"].append(np.exp(logs.mean(axis=1)) / (total[usable] / bins))
        for spectrum in spectra:
            mfccs.append(mfcc(spectrum)[1])
            contrasts.append(contrast(spectrum)[0])
        lr_contrasts.append(
            librosa.feature.spectral_contrast(S=spectra.T, sr=ANALYSIS_RATE, n_fft=FRAME_SIZE).T
        )
    if not mfccs:
        return {}
    result = {
        **_stats("spectral_centroid", series["centroid"], "_hz"),
        **_stats("spectral_rolloff", series["rolloff"], "_hz"),
        **_stats("spectral_flux", series["flux"]),
        **_stats("spectral_flatness", series["flatness"]),
        **_stats("zero_crossing_rate", series["zcr"]),
    }
    result.update(_mfcc_summary(np.array(mfccs, dtype=np.float64)))
    contrasts = np.array(contrasts, dtype=np.float64)
    result["spectral_contrast_mean"] = _floats(contrasts.mean(axis=0))
    result["spectral_contrast_stdev"] = _floats(contrasts.std(axis=0))
    result["librosa_spectral_contrast_mean"] = _floats(np.vstack(lr_contrasts).mean(axis=0))
    return result


def _tonality(mono: np.ndarray) -> dict:
    """HPCP and key with KeyExtractor's chain (whitened spectral peaks, 4 harmonics, monophonic
    profiles: the polyphonic ones mistake a I-IV-V cadence for the IV key), and librosa chroma
    -> tonnetz, all from one STFT."""
    import essentia.standard as es
    import librosa

    peaks = es.SpectralPeaks(
        sampleRate=ANALYSIS_RATE,
        orderBy="magnitude",
        magnitudeThreshold=1e-4,
        minFrequency=HPCP_MIN_HZ,
        maxFrequency=HPCP_MAX_HZ,
        maxPeaks=60,
    )
    whitening = es.SpectralWhitening(sampleRate=ANALYSIS_RATE, maxFrequency=HPCP_MAX_HZ)
    hpcp = es.HPCP(
        size=12,
        sampleRate=ANALYSIS_RATE,
        referenceFrequency=440,
        bandPreset=False,
        harmonics=4,
        minFrequency=HPCP_MIN_HZ,
        maxFrequency=HPCP_MAX_HZ,
        weightType="cosine",
        windowSize=1.0,
        normalized="unitMax",
    )
    hpcps, tonnetz = [], []
    for _frames_block, spectra in _spectra(mono, TONAL_FRAME_SIZE, TONAL_HOP_SIZE):
        for spectrum in spectra:
            frequencies, magnitudes = peaks(spectrum)
            hpcps.append(hpcp(frequencies, whitening(spectrum, frequencies, magnitudes)))
        chroma = librosa.feature.chroma_stft(
            S=spectra.T.astype(np.float64) ** 2,
            sr=ANALYSIS_RATE,
            n_fft=TONAL_FRAME_SIZE,
            tuning=0.0,
        )
        tonnetz.append(librosa.feature.tonnetz(chroma=chroma, sr=ANALYSIS_RATE).T)
    if not hpcps:
        return {}
    result: dict = {"tonnetz_mean": _floats(np.vstack(tonnetz).mean(axis=0))}
    mean = np.array(hpcps, dtype=np.float64).mean(axis=0)
    if not np.isfinite(mean).all() or mean.max() <= 0:
        return result
    result["hpcp_mean"] = _floats(mean)
    pcp = mean.astype(np.float32)
    for profile, suffix in (("bgate", ""), *((p, f"_{p}") for p in KEY_PROFILES)):
        found = _key(pcp, profile)
        if found is not None:
            names = (f"key{suffix}", f"scale{suffix}", f"key_strength{suffix}")
            result.update(zip(names, found, strict=True))
    return result


def _frame_blocks(mono: np.ndarray, frame_size: int, hop_size: int):
    """(frames, frame_size) float32 blocks; the tail is zero-padded so no sample is dropped."""
    if len(mono) < frame_size:
        padded = np.zeros(frame_size, dtype=np.float32)
        padded[: len(mono)] = mono
        yield padded[None, :]
        return
    frames = np.lib.stride_tricks.sliding_window_view(mono, frame_size)[::hop_size]
    for start in range(0, len(frames), FRAMES_PER_BLOCK):
        yield np.array(frames[start : start + FRAMES_PER_BLOCK], dtype=np.float32)
    if (len(frames) - 1) * hop_size + frame_size < len(mono):
        tail = np.zeros(frame_size, dtype=np.float32)
        rest = mono[len(frames) * hop_size :]
        tail[: len(rest)] = rest
        yield tail[None, :]


def _mfcc_summary(mfccs: np.ndarray) -> dict:
    result = {"mfcc_mean": _floats(mfccs.mean(axis=0))}
    if len(mfccs) > 1:
        upper = np.triu_indices(N_MFCC)
        result["mfcc_cov"] = _floats(np.cov(mfccs, rowvar=False)[upper])
    return result
