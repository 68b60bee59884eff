"""Signal processing that makes synthetic speech less trivially separable: warp, noise, reverb, levels."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import fftconvolve, resample_poly

SAMPLE_RATE = 16000
NOISE_KINDS = ("white", "pink", "brown", "babble")


def to_16k(samples: np.ndarray, source_rate: int, warp: float = 1.0) -> np.ndarray:
    """Resample int16 audio to 16 kHz float32; ``warp`` != 1 also scales pitch and formants by 1/warp."""
    ratio = Fraction(round(SAMPLE_RATE * warp * 100), source_rate * 100)
    x = samples.astype(np.float64) / 32768.0
    return resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)


def coloured_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) noise with unit RMS."""
    white = rng.standard_normal(n)
    if kind != "white":
        spectrum = np.fft.rfft(white)
        f = np.maximum(np.arange(spectrum.size), 1.0)
        spectrum /= f ** (0.5 if kind == "pink" else 1.0)
        white = np.fft.irfft(spectrum, n)
    return (white / (np.sqrt(np.mean(white**2)) + 1e-12)).astype(np.float32)


def noise(kind: str, n: int, rng: np.random.Generator, babble: np.ndarray) -> np.ndarray:
    """Unit-RMS noise of ``kind``; babble is a random excerpt of the shared babble loop."""
    if kind != "babble":
        return coloured_noise(kind, n, rng)
    start = int(rng.integers(babble.size))
    excerpt = np.resize(np.roll(babble, -start), n)
    return excerpt / (np.sqrt(np.mean(excerpt**2)) + 1e-12)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def add_noise(x: np.ndarray, unit_noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix unit-RMS noise at ``snr_db`` relative to the RMS of the non-silent part of ``x``."""
    active = x[np.abs(x) > 1e-4]
    level = rms(active) if active.size else rms(x)
    return x + unit_noise[: x.size] * level * 10 ** (-snr_db / 20)


def reverb(x: np.ndarray, rng: np.random.Generator, rt60: float | None = None) -> np.ndarray:
    """Light synthetic room: exponentially decaying noise tail, mixed with the dry signal."""
    rt60 = rt60 if rt60 is not None else float(rng.uniform(0.1, 0.35))
    t = np.arange(int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
    tail = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)
    tail[0] = 0.0
    wet = fftconvolve(x, tail / np.sqrt(np.sum(tail**2)))[: x.size]
    return (x + wet * float(rng.uniform(0.1, 0.3))).astype(np.float32)


def pad(x: np.ndarray, lead: float, trail: float) -> np.ndarray:
    """Leading and trailing silence in seconds (filled by noise later, never left digital zero)."""
    return np.concatenate(
        [np.zeros(int(lead * SAMPLE_RATE), np.float32), x, np.zeros(int(trail * SAMPLE_RATE), np.float32)]
    )


def normalise(x: np.ndarray, rms_db: float, peak: float = 0.95) -> np.ndarray:
    """Set the RMS level in dBFS, backing off if that would clip (loud settings clip otherwise)."""
    gain = 10 ** (rms_db / 20) / rms(x)
    gain = min(gain, peak / (float(np.max(np.abs(x))) + 1e-12))
    return (x * gain).astype(np.float32)


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def activity(x: np.ndarray, frame: int = 160, floor_db: float = -40.0, bridge: float = 0.3) -> np.ndarray:
    """Per-frame speech activity of a clean track: energy within ``floor_db`` of its loudest frame,
    with pauses shorter than ``bridge`` seconds (gaps between words) filled in."""
    n = x.size // frame
    energy = 10 * np.log10(np.mean(x[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1) + 1e-12)
    active = energy > energy.max() + floor_db
    gap_frames = int(bridge * SAMPLE_RATE / frame)
    edges = np.flatnonzero(np.diff(active.astype(np.int8)))
    filled = active.copy()
    for fall, rise in zip(edges[:-1], edges[1:], strict=True):
        if active[fall] and rise - fall <= gap_frames:
            filled[fall + 1 : rise + 1] = True
    return filled
