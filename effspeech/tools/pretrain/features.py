"""MFCC + deltas + delta-deltas at the 50 Hz label rate, frame for frame with the conv extractor.

A 25 ms window and 20 ms hop without edge padding give ``(samples - 400) // 320 + 1`` frames, exactly
the frames of a conv stack with receptive field 400 and stride 320, so frame ``t`` of the labels
describes the same samples as frame ``t`` of the model."""

from __future__ import annotations

import torch
import torchaudio.functional
from torchaudio.compliance import kaldi

SAMPLE_RATE = 16000
WINDOW = 400  # samples: 25 ms, the conv extractor's receptive field
HOP = 320  # samples: 20 ms, its total stride
DIM = 39


def num_frames(samples: int) -> int:
    """Frames of ``samples`` audio at the label rate (and of the conv extractor's output)."""
    return 0 if samples < WINDOW else (samples - WINDOW) // HOP + 1


def mfcc_deltas(wav: torch.Tensor) -> torch.Tensor:
    """``(frames, 39)``: 13 Kaldi MFCCs (no energy, no dither: deterministic) and their deltas."""
    mfcc = kaldi.mfcc(
        wav.float().unsqueeze(0),
        sample_frequency=SAMPLE_RATE,
        frame_length=1000 * WINDOW / SAMPLE_RATE,
        frame_shift=1000 * HOP / SAMPLE_RATE,
        use_energy=False,
        dither=0.0,
    ).T
    deltas = torchaudio.functional.compute_deltas(mfcc)
    return torch.cat([mfcc, deltas, torchaudio.functional.compute_deltas(deltas)]).T


PITCH_WINDOW = 640  # samples: 40 ms around each frame's centre, two periods of a 50 Hz voice
LAGS = (SAMPLE_RATE // 400, SAMPLE_RATE // 60)  # periods of 400 Hz .. 60 Hz, in samples
VOICED = 0.5  # voicing strength from which a frame's F0 counts
OCTAVE_COST = 0.02  # per octave of lag: prefers the period over its multiples when they peak alike


def pitch(wav: torch.Tensor) -> torch.Tensor:
    """``(frames, 2)``: log F0 and voicing strength at the label rate, from the normalised autocorrelation.

    Each frame's 40 ms Hann window is centred on the 25 ms MFCC frame. Dividing the window's
    autocorrelation by that of the Hann window itself (Boersma, 1993) removes the taper's decay with lag;
    the strongest peak between 60 and 400 Hz gives F0, its height (about 1 voiced, about 0 in noise or
    silence) the voicing strength. Multiples of the period peak as high as the period itself, so longer
    lags pay Boersma's small octave cost. Frames weaker than ``VOICED`` get the 60 Hz floor as F0 rather
    than whatever lag happened to peak, so that they form their own clusters instead of random labels."""
    frames = num_frames(len(wav))
    if frames == 0:
        return torch.zeros(0, 2)
    pad = (PITCH_WINDOW - WINDOW) // 2
    padded = torch.nn.functional.pad(wav.float(), (pad, pad))
    windows = padded.unfold(0, PITCH_WINDOW, HOP)[:frames]
    hann = torch.hann_window(PITCH_WINDOW, periodic=False)
    size = 2 * PITCH_WINDOW
    correlation = torch.fft.irfft(torch.fft.rfft(windows * hann, size).abs().pow(2), size)[:, : LAGS[1] + 1]
    taper = torch.fft.irfft(torch.fft.rfft(hann, size).abs().pow(2), size)[: LAGS[1] + 1]
    normalised = (correlation / taper) / (correlation[:, :1] / taper[0]).clamp(min=1e-8)
    lags = torch.arange(LAGS[0], LAGS[1] + 1)
    candidates = normalised[:, LAGS[0] :]
    offset = (candidates - OCTAVE_COST * torch.log2(lags / LAGS[0])).argmax(dim=1)
    strength = candidates.gather(1, offset[:, None])[:, 0].clamp(0.0, 1.0)
    f0 = torch.where(strength >= VOICED, SAMPLE_RATE / lags[offset].float(), SAMPLE_RATE / LAGS[1])
    return torch.stack([f0.log(), strength], dim=1)


VOICE_BLOCK = 100  # frames: 2 s, the length of a pretraining crop


def voice(wav: torch.Tensor) -> torch.Tensor:
    """``(frames, 26)``: who is speaking, as statistics of each 2 s block, repeated on its every frame.

    Mean and standard deviation of MFCCs c1-c12 (timbre, formants; c0, the level, left out) and of log
    F0 over the block's voiced frames (all frames where fewer than two are voiced, so padding and
    silence do not count)."""
    timbre = mfcc_deltas(wav)[:, 1:13]
    intonation = pitch(wav)
    blocks = []
    for start in range(0, len(timbre), VOICE_BLOCK):
        span = slice(start, start + VOICE_BLOCK)
        voiced = intonation[span, 1] >= VOICED
        if int(voiced.sum()) < 2:
            voiced = torch.ones_like(voiced)
        picked = torch.cat([timbre[span], intonation[span, :1]], dim=1)[voiced]
        stats = torch.cat([picked.mean(dim=0), picked.std(dim=0, correction=0)])
        blocks.append(stats.expand(len(voiced), -1))
    return torch.cat(blocks) if blocks else torch.zeros(0, 26)
