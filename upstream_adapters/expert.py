"""Build an S3PRL upstream expert and attach effspeech adapters to it.

The expert is S3PRL's own (``s3prl.hub.<family>_local``), so hidden-state hooks, normalisation and
downsampling are exactly S3PRL's; the adapters are reachable as ``expert.adapters``."""

from __future__ import annotations

import logging
import os

import s3prl.hub
import torch
from s3prl.util.download import _urls_to_filepaths
from torch import nn

import effspeech
from effspeech.spec import parse_spec

logger = logging.getLogger(__name__)

# The CNN extractors of all three families see 400 samples (25 ms) for their first frame.
MIN_SAMPLES = 400

# The checkpoints S3PRL's own `hubert`, `wav2vec2` and `wavlm` entries default to.
DEFAULT_CHECKPOINTS = {
    "hubert": "https://huggingface.co/s3prl/converted_ckpts/resolve/main/hubert_base_ls960.pt",
    "wav2vec2": "https://huggingface.co/s3prl/converted_ckpts/resolve/main/wav2vec_small.pt",
    "wavlm": "https://huggingface.co/s3prl/converted_ckpts/resolve/main/wavlm_base_plus.pt",
}


def default_checkpoint(family: str, refresh: bool = False) -> str:
    """The cached default checkpoint, downloaded by S3PRL if needed; offline, a clear error at once."""
    url = DEFAULT_CHECKPOINTS[family]
    cached = _urls_to_filepaths(url, download=False)
    if os.path.isfile(cached) and not refresh:
        return cached
    try:
        return _urls_to_filepaths(url, refresh=refresh)
    except Exception as error:
        raise RuntimeError(
            f"cannot download the default {family} checkpoint from {url} ({error}); "
            f"without network access pass a local checkpoint with -k PATH (ckpt=PATH)"
        ) from error


def build_expert(family: str, ckpt: str | None = None, adapter=None, refresh: bool = False, **kwargs) -> nn.Module:
    """S3PRL's ``<family>_local`` expert on ``ckpt`` (or the default), with ``adapter`` attached."""
    if ckpt is None:
        ckpt = default_checkpoint(family, refresh)
    elif not os.path.isfile(ckpt):
        raise FileNotFoundError(f"upstream checkpoint not found: {ckpt}")
    expert = getattr(s3prl.hub, f"{family}_local")(ckpt=ckpt, **kwargs)
    expert.register_forward_pre_hook(pad_short_waves)
    spec = parse_spec(adapter)
    expert.adapters = effspeech.attach(expert, spec) if spec else None
    return expert


def pad_short_waves(_expert: nn.Module, args: tuple) -> tuple:
    """Zero-pad waves shorter than the extractor's receptive field to one frame: a batch of only such
    waves would otherwise stop deep inside the CNN with a kernel-size error."""
    wavs = args[0]
    if all(len(wav) >= MIN_SAMPLES for wav in wavs):
        return args
    logger.warning("padding waves shorter than %d samples to one frame", MIN_SAMPLES)
    padded = [
        torch.nn.functional.pad(wav, (0, MIN_SAMPLES - len(wav))) if len(wav) < MIN_SAMPLES else wav for wav in wavs
    ]
    return (padded, *args[1:])
