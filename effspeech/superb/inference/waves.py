"""Recordings as a trained head expects them: one channel at 16 kHz, then the recipe's own effects (KS reads
its clips 3 dB down). Files are read as the recipes read them (soundfile, float32), so that predicting a
test split sees the samples ``-m evaluate`` saw."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio

from effspeech.superb.audio import SAMPLE_RATE, BadAudioError, sample_faults

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au", ".sph")


Wave = torch.Tensor | np.ndarray


def read(path: str | Path) -> tuple[torch.Tensor, int]:
    """``(channels, samples)`` float32 and the sample rate; a file that is not usable audio raises
    ``BadAudioError`` naming it and what is wrong."""
    if not Path(path).is_file():
        raise BadAudioError(f"{path}: no such file")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile names no exception types per fault
        raise BadAudioError(f"{path}: not readable as audio ({error})") from None
    faults = sample_faults(data)
    if faults:
        raise BadAudioError(f"{path}: {faults[0]}")
    return torch.from_numpy(np.ascontiguousarray(data.T)), rate


def prepare(wave: Wave, sample_rate: int, effects: Sequence[Sequence[str]], name: str = "wave") -> torch.Tensor:
    """A 1-D float32 wave at 16 kHz with the recipe's ``effects`` applied. 2-D input is channels x samples or
    samples x channels (soundfile's layout; the shorter side is the channels); integer PCM is scaled to
    [-1, 1) as soundfile scales it. More than one channel is averaged and another rate resampled, each
    with a warning naming ``name``."""
    if isinstance(wave, np.ndarray) and np.issubdtype(wave.dtype, np.integer):
        wave = wave / float(2 ** (8 * wave.dtype.itemsize - 1))
    elif isinstance(wave, torch.Tensor) and not wave.is_floating_point():
        wave = wave / float(2 ** (8 * wave.element_size() - 1))
    wave = torch.as_tensor(wave).detach().to("cpu", torch.float32)
    if wave.dim() == 1:
        wave = wave.unsqueeze(0)
    if wave.dim() != 2:
        raise BadAudioError(f"{name}: a wave is 1-D (samples) or 2-D (channels, samples), not {tuple(wave.shape)}")
    if wave.size(0) > wave.size(1):
        wave = wave.T
    faults = sample_faults(wave.contiguous().numpy())
    if faults:
        raise BadAudioError(f"{name}: {faults[0]}")
    if wave.size(0) > 1:
        logger.warning("%s: %d channels, averaged to one", name, wave.size(0))
        wave = wave.mean(dim=0, keepdim=True)
    if sample_rate != SAMPLE_RATE:
        logger.warning("%s: resampled from %d Hz to %d Hz", name, sample_rate, SAMPLE_RATE)
        wave = torchaudio.functional.resample(wave, sample_rate, SAMPLE_RATE)
    if effects:
        wave, _ = torchaudio.sox_effects.apply_effects_tensor(wave, SAMPLE_RATE, [list(e) for e in effects])
    return wave[0]


def audio_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files named, and the audio files under the directories named (recursively, sorted)."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        else:
            found.append(path)
    return found
