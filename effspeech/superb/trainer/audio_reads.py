"""Every audio file a recipe reads, checked and attributed while a run lasts. All six recipes read audio
through ``soundfile.read`` (directly, or via the compat layer's ``torchaudio.load``/``apply_effects_file``),
so a tap there sees each file a recipe opens: a fault raises ``BadAudio`` naming the file, and the
file's path is recorded for whoever asked (the guarded dataset, to name the file behind any failure).

The tap also makes stereo and non-16 kHz audio right where the recipe would not: only speech_commands
down-mixes and resamples itself (sox effects); the others would feed 2-channel arrays or wrong-rate audio
to the upstream (ASR asserts the rate)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import numpy as np
import soundfile
import torch
import torchaudio

from effspeech.superb.audio import SAMPLE_RATE, sample_faults

logger = logging.getLogger(__name__)

_opened: ContextVar[list[str] | None] = ContextVar("effspeech_opened", default=None)


class BadAudio(Exception):
    """A file a recipe read, and what is wrong with it."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(f"{path}: {what}")
        self.path, self.what = path, what


@contextlib.contextmanager
def recording_opened() -> Iterator[list[str]]:
    """The paths of the audio files read inside the block, in order (empty outside a tapped run)."""
    opened: list[str] = []
    token = _opened.set(opened)
    try:
        yield opened
    finally:
        _opened.reset(token)


@contextlib.contextmanager
def tapped_reads(converts_audio: bool) -> Iterator[None]:
    """Route ``soundfile.read`` through the checks while a run (its recipe build, training, evaluation) lasts;
    ``converts_audio``: the recipe down-mixes and resamples itself (``Task.converts_audio``)."""
    original = soundfile.read

    def read(file: Any, *args: Any, **kwargs: Any) -> tuple[np.ndarray, int]:
        path = str(file)
        opened = _opened.get()
        if opened is not None:
            opened.append(path)
        try:
            data, rate = original(file, *args, **kwargs)
        except Exception as error:
            raise BadAudio(path, f"unreadable: {error}") from error
        faults = sample_faults(np.asarray(data))
        if faults:
            raise BadAudio(path, faults[0])
        if converts_audio:
            return data, rate
        partial = bool(args) or any(kwargs.get(key) not in (None, 0, -1) for key in ("frames", "start", "stop"))
        return _to_mono_16k(path, data, rate, partial, keep_2d=kwargs.get("always_2d", False))

    soundfile.read = read
    try:
        yield
    finally:
        soundfile.read = original


def _to_mono_16k(path: str, data: np.ndarray, rate: int, partial: bool, keep_2d: bool) -> tuple[np.ndarray, int]:
    """Down-mix (to the layout a mono file gives the caller) and resample a whole file to 16 kHz, with a warning."""
    if data.ndim == 2 and data.shape[1] > 1:
        logger.warning("%s: %d channels, down-mixed to mono", path, data.shape[1])
        data = data.mean(axis=1, keepdims=keep_2d)
    if rate != SAMPLE_RATE:
        if partial:  # the recipe chose the segment's offsets in 16 kHz samples: no resampling fixes that
            raise BadAudio(path, f"sample rate {rate} Hz: this recipe reads segments at {SAMPLE_RATE} Hz offsets")
        logger.warning("%s: sample rate %d Hz, resampled to %d", path, rate, SAMPLE_RATE)
        wav = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(data.T)), rate, SAMPLE_RATE)
        data, rate = wav.numpy().T, SAMPLE_RATE
    return data, rate
