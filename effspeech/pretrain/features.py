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
