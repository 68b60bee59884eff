"""The one way effspeech builds an upstream: ``load_upstream(name, ckpt, adapter)`` returns S3PRL's own
expert (so hidden-state hooks, normalisation and downsampling are exactly S3PRL's) and the
``AdapterSet`` attached to it. Every command (the trainer, params, bench, the leaderboard, the demo)
and the ``upstream_adapters`` hub entries call it.

``name`` is an effspeech entry (``hubert_adapter``, ``wav2vec2_adapter``, ``wavlm_adapter``,
``hubert_mini_adapter``: an S3PRL family with a default checkpoint; ``hf_<family>_adapter``: a
transformers model, through ``transformers_upstream``) or any ``s3prl.hub`` name."""

from __future__ import annotations

import difflib
import importlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from effspeech.engine import AdapterSet, attach
from effspeech.errors import DownloadError, MissingFileError, UnknownNameError
from effspeech.spec import parse_spec
from effspeech.superb.compat import quiet_s3prl
from effspeech.superb.embedded import embedded_file
from effspeech.superb.records import file_digest
from effspeech.superb.transformers_upstream import load_transformers

logger = logging.getLogger(__name__)

MIN_SAMPLES = 400  # the CNN extractors of all three families see 400 samples (25 ms) for their first frame


@dataclass(frozen=True)
class UpstreamEntry:
    family: str  # S3PRL's ``<family>_local`` loads the checkpoint, or transformers' model of the family
    embedded: str  # the offline default (effspeech.superb.embedded): shipped, or built once at random
    description: str  # what the entry is, for its hub function
    url: str | None = None  # the pretrained default (URL, or hub id); None: the embedded one is the default
    transformers: bool = False  # a Hugging Face save_pretrained directory or hub id, not an S3PRL checkpoint


_CONVERTED = "https://huggingface.co/s3prl/converted_ckpts/resolve/main"
ENTRIES = {
    "hubert_adapter": UpstreamEntry(
        "hubert", "hubert_tiny", "HuBERT (default: Base, LibriSpeech 960 h)", f"{_CONVERTED}/hubert_base_ls960.pt"
    ),
    "wav2vec2_adapter": UpstreamEntry(
        "wav2vec2", "wav2vec2_tiny", "wav2vec 2.0 (default: Base, LibriSpeech 960 h)", f"{_CONVERTED}/wav2vec_small.pt"
    ),
    "wavlm_adapter": UpstreamEntry("wavlm", "wavlm_tiny", "WavLM (default: Base+)", f"{_CONVERTED}/wavlm_base_plus.pt"),
    "hubert_mini_adapter": UpstreamEntry(
        "hubert", "hubert_mini", "The small HuBERT pretrained on Mini-SUPERB's train splits (docs/hubert_mini.md)"
    ),
    **{
        f"hf_{family}_adapter": UpstreamEntry(family, f"hf_{family}_tiny", f"transformers {what}", hub_id, True)
        for family, what, hub_id in (
            ("hubert", "HubertModel (default: facebook/hubert-base-ls960)", "facebook/hubert-base-ls960"),
            ("wav2vec2", "Wav2Vec2Model (default: facebook/wav2vec2-base)", "facebook/wav2vec2-base"),
            ("wavlm", "WavLMModel (default: microsoft/wavlm-base-plus)", "microsoft/wavlm-base-plus"),
            ("data2vec", "Data2VecAudioModel (default: facebook/data2vec-audio-base)", "facebook/data2vec-audio-base"),
        )
    },
}
S3PRL_LOCAL = {f"{e.family}_local": e.family for e in ENTRIES.values() if not e.transformers}  # s3prl.hub names


def load_upstream(
    name: str,
    ckpt: str | os.PathLike | None = None,
    adapter: Any = None,
    *,
    refresh: bool = False,
    model_config: str | None = None,
    **options: Any,
) -> tuple[nn.Module, AdapterSet | None]:
    """S3PRL's expert for ``name`` on ``ckpt`` (None: the entry's default), with the adapter spec attached
    (None or ``"none"``: nothing attached, the AdapterSet is None). ``options`` go to S3PRL's expert as
    they would from S3PRL's own hub (``legacy=True``, ``fairseq=True`` for fairseq checkpoints, ...)."""
    spec = parse_spec(adapter)  # a malformed spec fails before any checkpoint is read
    if name in ENTRIES and ENTRIES[name].transformers:
        expert = load_transformers(ENTRIES[name].family, str(ckpt) if ckpt is not None else ENTRIES[name].url)
        return expert, attach(expert, spec) if spec else None
    with quiet_s3prl():
        if name in ENTRIES:  # built by the family's own hubconf, without importing all of s3prl.hub
            family = ENTRIES[name].family
            path = str(ckpt) if ckpt is not None else default_checkpoint(name, refresh)
            if not path.startswith("http") and not os.path.isfile(path):
                raise MissingFileError(f"upstream checkpoint not found: {path}")
            hubconf = importlib.import_module(f"s3prl.upstream.{family}.hubconf")
            expert = getattr(hubconf, f"{family}_local")(ckpt=path, model_config=model_config, **options)
        else:
            check_name(name)
            from s3prl import hub

            path = None if ckpt is None else str(ckpt)
            expert = getattr(hub, name)(ckpt=path, model_config=model_config, refresh=refresh, **options)
    return expert, attach(expert, spec) if spec else None


def check_name(name: str) -> None:
    """Refuse an upstream name that is neither an effspeech entry nor an ``s3prl.hub`` entry, in seconds."""
    if name in ENTRIES:
        return
    with quiet_s3prl():
        from s3prl import hub
    if not name or not hasattr(hub, name):
        close = difflib.get_close_matches(name or "", [n for n in dir(hub) if not n.startswith("_")], n=8)
        raise UnknownNameError(
            f"unknown upstream {name!r}; valid: {', '.join(ENTRIES)} (effspeech entries), or any s3prl.hub "
            f"entry{' such as ' + ', '.join(close) if close else ''}"
        )


def family_of(name: str) -> str:
    """The S3PRL family (hubert, wav2vec2, wavlm) an entry or an ``s3prl.hub`` ``<family>_local`` name loads."""
    if name in ENTRIES:
        return ENTRIES[name].family
    if name in S3PRL_LOCAL:
        return S3PRL_LOCAL[name]
    raise UnknownNameError(f"unknown upstream {name!r} for a family; valid: {', '.join([*ENTRIES, *S3PRL_LOCAL])}")


def default_checkpoint(name: str, refresh: bool = False) -> str:
    """The default checkpoint of an entry: the pretrained one S3PRL downloads (cached), else the embedded
    one. Offline with nothing cached, a clear error at once."""
    entry = ENTRIES[name]
    if entry.url is None:
        return str(embedded_file(entry.embedded))
    if entry.transformers:  # a hub id: transformers downloads and caches it (load_transformers)
        return entry.url
    from s3prl.util.download import _urls_to_filepaths

    cached = _urls_to_filepaths(entry.url, download=False)
    if os.path.isfile(cached) and not refresh:
        return cached
    try:
        return _urls_to_filepaths(entry.url, refresh=refresh)
    except Exception as error:
        raise DownloadError(
            f"cannot download the default {entry.family} checkpoint from {entry.url} ({error}); "
            "without network access pass a local checkpoint with -k PATH (ckpt=PATH)"
        ) from error


def checkpoint_identity(args: dict[str, Any], full: bool = False) -> str:
    """What upstream a run's args name, as one string that two runs share exactly when they trained on the
    same checkpoint: the entry, the SHA-256 of the checkpoint file (its path or URL where there is no
    file here; ``full``: all 64 digits, not 12) and the model config."""
    name, ckpt = args["upstream"], args.get("upstream_ckpt")
    path = ckpt or (default_checkpoint(name) if name in ENTRIES else None)
    digest = f"sha256 {file_digest(path)[: 64 if full else 12]}" if path and os.path.exists(path) else str(path)
    config = args.get("upstream_model_config")
    return f"{name} ({digest}{', ' + str(config) if config else ''})"


def offline_checkpoint(name: str) -> Path:
    """The embedded checkpoint of an entry, for runs that must not download (the demo, the offline presets)."""
    if name not in ENTRIES:
        raise UnknownNameError(f"no embedded checkpoint for {name!r}; valid: {', '.join(ENTRIES)}")
    return embedded_file(ENTRIES[name].embedded)


def pad_short_waves(wavs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Zero-pad waves shorter than the CNN extractor's receptive field to one frame: a batch of only such
    waves would otherwise stop deep inside the CNN with a kernel-size error. The trainer does this for
    every upstream with such an extractor; code that calls an expert itself can do the same."""
    if all(len(wav) >= MIN_SAMPLES for wav in wavs):
        return list(wavs)
    logger.warning("padding waves shorter than %d samples to one frame", MIN_SAMPLES)
    return [nn.functional.pad(wav, (0, MIN_SAMPLES - len(wav))) if len(wav) < MIN_SAMPLES else wav for wav in wavs]
