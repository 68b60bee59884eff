"""Make s3prl 0.4.18 run on current torch/torchaudio.

s3prl was written against torchaudio's sox/ffmpeg I/O and torch < 2.6. Each shim
below is installed only where the API it stands in for is missing (or, for
``torchaudio.load``, unusable because torchcodec is absent), so on an old stack
this module changes nothing. ``install()`` runs once when ``effspeech.superb`` is imported;
``INSTALLED`` lists what it did. Nothing inside site-packages is edited. ``quiet_s3prl()`` silences
the deprecation noise S3PRL's code raises on current torch, around the calls effspeech makes into it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import sys
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile
import torch
import torchaudio

INSTALLED: list[str] = []


@dataclass
class AudioMetaData:
    """What ``torchaudio.info`` used to return."""

    sample_rate: int
    num_frames: int
    num_channels: int
    bits_per_sample: int
    encoding: str


def _set_audio_backend(backend: str | None) -> None:
    """Backends are gone from torchaudio >= 2.9; the call is kept as a no-op."""


def _info(uri, format: str | None = None, backend: str | None = None) -> AudioMetaData:  # noqa: A002
    meta = soundfile.info(str(uri))
    bits = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "PCM_U8": 8, "PCM_S8": 8, "FLOAT": 32, "DOUBLE": 64}
    return AudioMetaData(
        sample_rate=meta.samplerate,
        num_frames=meta.frames,
        num_channels=meta.channels,
        bits_per_sample=bits.get(meta.subtype, 0),
        encoding=meta.subtype,
    )


def _load(
    uri,
    frame_offset: int = 0,
    num_frames: int = -1,
    normalize: bool = True,
    channels_first: bool = True,
    format: str | None = None,  # noqa: A002
    buffer_size: int = 4096,
    backend: str | None = None,
) -> tuple[torch.Tensor, int]:
    """``torchaudio.load`` through soundfile (WAV, FLAC, OGG): float32 in [-1, 1]."""
    stop = None if num_frames < 0 else frame_offset + num_frames
    dtype = "float32" if normalize else "int16"
    data, sample_rate = soundfile.read(str(uri), start=frame_offset, stop=stop, dtype=dtype, always_2d=True)
    wav = torch.from_numpy(np.ascontiguousarray(data.T if channels_first else data))
    return wav, sample_rate


def _apply_effects_tensor(
    tensor: torch.Tensor, sample_rate: int, effects: list[list[str]], channels_first: bool = True
) -> tuple[torch.Tensor, int]:
    """The sox effects s3prl's recipes use: ``channels``, ``rate`` and ``gain``."""
    wav = tensor if channels_first else tensor.T
    for effect in effects:
        name, args = effect[0], effect[1:]
        if name == "channels":
            wav = wav.mean(dim=0, keepdim=True) if int(args[0]) == 1 else wav.expand(int(args[0]), -1)
        elif name == "rate":
            target = int(float(args[0]))
            if target != sample_rate:
                wav = torchaudio.functional.resample(wav, sample_rate, target)
                sample_rate = target
        elif name == "gain":
            wav = wav * 10.0 ** (float(args[-1]) / 20.0)
        else:
            raise NotImplementedError(f"sox effect {name!r} has no effspeech shim (supported: channels, rate, gain)")
    return (wav if channels_first else wav.T), sample_rate


def _apply_effects_file(
    path, effects: list[list[str]], normalize: bool = True, channels_first: bool = True, format=None
):  # noqa: A002
    wav, sample_rate = _load(path)
    return _apply_effects_tensor(wav, sample_rate, effects, channels_first)


class _DistributedSamplerWrapper(torch.utils.data.DistributedSampler):
    """Shard the indices that another sampler yields across DDP ranks (catalyst's API)."""

    def __init__(self, sampler, num_replicas=None, rank=None, shuffle: bool = True):
        self.sampler = sampler
        super().__init__(list(range(len(sampler))), num_replicas=num_replicas, rank=rank, shuffle=shuffle)

    def __iter__(self):
        drawn = list(self.sampler)
        return iter(drawn[i] for i in super().__iter__() if i < len(drawn))


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split("+")[0].split(".")[:2]
    return int(major), int(minor)


def _module(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules[name] = module
    return module


def install() -> list[str]:
    """Install every shim this stack needs; return their names (idempotent)."""
    if INSTALLED:
        return INSTALLED
    if not hasattr(torchaudio, "set_audio_backend"):
        torchaudio.set_audio_backend = _set_audio_backend
        INSTALLED.append("torchaudio.set_audio_backend")
    if not hasattr(torchaudio, "info"):
        torchaudio.info = _info
        INSTALLED.append("torchaudio.info")
    if importlib.util.find_spec("torchcodec") is None and _version(torchaudio.__version__) >= (2, 9):
        torchaudio.load = _load
        INSTALLED.append("torchaudio.load")
    if importlib.util.find_spec("torchaudio.sox_effects") is None:
        torchaudio.sox_effects = _module(
            "torchaudio.sox_effects",
            apply_effects_file=_apply_effects_file,
            apply_effects_tensor=_apply_effects_tensor,
        )
        INSTALLED.append("torchaudio.sox_effects")
    if importlib.util.find_spec("catalyst") is None:
        sampler = _module("catalyst.data.sampler", DistributedSamplerWrapper=_DistributedSamplerWrapper)
        data = _module("catalyst.data", sampler=sampler)
        _module("catalyst", data=data)
        INSTALLED.append("catalyst.data.sampler.DistributedSamplerWrapper")
    if hasattr(torch.serialization, "add_safe_globals"):
        # torch >= 2.6 loads with weights_only=True; s3prl checkpoints carry an argparse.Namespace.
        torch.serialization.add_safe_globals([argparse.Namespace])
        INSTALLED.append("torch.load: argparse.Namespace allowed")
    return INSTALLED


@contextlib.contextmanager
def quiet_s3prl() -> Iterator[None]:
    """Building an upstream through S3PRL prints what no effspeech user can act on: "ESPnet is not
    installed" (when ``s3prl.hub`` imports every upstream) and torch's deprecation warnings about
    S3PRL's own code (``weight_norm``, ``torch.jit.script_method``). They are dropped here, and only here."""
    noisy = logging.getLogger("s3prl.upstream.espnet_hubert.expert")
    level = noisy.level
    noisy.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            yield
    finally:
        noisy.setLevel(level)
