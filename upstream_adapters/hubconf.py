"""S3PRL-style hub entries: ``<family>_adapter(ckpt=None, adapter=None)`` returns S3PRL's expert with the
adapters attached (``effspeech.adapters_of(expert)`` is their ``AdapterSet``). Without ``ckpt`` each
uses the same pretrained default as S3PRL's ``hubert``/``wav2vec2``/``wavlm``, and
``hubert_mini_adapter`` the small HuBERT shipped with effspeech. Each is
``effspeech.superb.upstream.load_upstream``, which the effspeech commands call directly; extra keyword
arguments (S3PRL's runner passes ``model_config``) are ignored, as S3PRL's ``<family>_local`` does."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from effspeech.superb.upstream import load_upstream


def hubert_adapter(ckpt: str | None = None, adapter=None, refresh: bool = False, **kwargs) -> nn.Module:
    """HuBERT (default: Base, LibriSpeech 960 h) with adapters."""
    return load_upstream("hubert_adapter", ckpt, adapter, refresh=refresh)[0]


def wav2vec2_adapter(ckpt: str | None = None, adapter=None, refresh: bool = False, **kwargs) -> nn.Module:
    """wav2vec 2.0 (default: Base, LibriSpeech 960 h) with adapters."""
    return load_upstream("wav2vec2_adapter", ckpt, adapter, refresh=refresh)[0]


def wavlm_adapter(ckpt: str | None = None, adapter=None, refresh: bool = False, **kwargs) -> nn.Module:
    """WavLM (default: Base+) with adapters."""
    return load_upstream("wavlm_adapter", ckpt, adapter, refresh=refresh)[0]


def hubert_mini_adapter(ckpt: str | None = None, adapter=None, refresh: bool = False, **kwargs) -> nn.Module:
    """The small HuBERT pretrained on Mini-SUPERB's train splits (docs/hubert_mini.md), with adapters."""
    return load_upstream("hubert_mini_adapter", ckpt, adapter, refresh=refresh)[0]


ENTRIES: dict[str, Callable[..., nn.Module]] = {
    "hubert_adapter": hubert_adapter,
    "wav2vec2_adapter": wav2vec2_adapter,
    "wavlm_adapter": wavlm_adapter,
    "hubert_mini_adapter": hubert_mini_adapter,
}
