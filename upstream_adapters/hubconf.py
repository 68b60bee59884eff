"""S3PRL-style hub entries: ``<family>_adapter(ckpt=None, adapter=None)``.

Without ``ckpt`` each uses the same pretrained default as S3PRL's ``hubert``/``wav2vec2``/``wavlm``."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from upstream_adapters.expert import build_expert


def hubert_adapter(ckpt: str | None = None, adapter=None, refresh: bool = False, **kwargs) -> nn.Module:
    """HuBERT (default: Base, LibriSpeech 960 h) with adapters."""
    return build_expert("hubert", ckpt, adapter, refresh, **kwargs)


def wav2vec2_adapter(ckpt: str | None = None, adapter=None, refresh: bool = False, **kwargs) -> nn.Module:
    """wav2vec 2.0 (default: Base, LibriSpeech 960 h) with adapters."""
    return build_expert("wav2vec2", ckpt, adapter, refresh, **kwargs)


def wavlm_adapter(ckpt: str | None = None, adapter=None, refresh: bool = False, **kwargs) -> nn.Module:
    """WavLM (default: Base+) with adapters."""
    return build_expert("wavlm", ckpt, adapter, refresh, **kwargs)


def hubert_mini_adapter(ckpt: str | None = None, adapter=None, refresh: bool = False, **kwargs) -> nn.Module:
    """The small HuBERT pretrained on Mini-SUPERB's train splits (docs/hubert_mini.md), with adapters."""
    from effspeech.assets import checkpoint_path

    return build_expert("hubert", ckpt or str(checkpoint_path("hubert_mini")), adapter, refresh, **kwargs)


ENTRIES: dict[str, Callable[..., nn.Module]] = {
    "hubert_adapter": hubert_adapter,
    "wav2vec2_adapter": wav2vec2_adapter,
    "wavlm_adapter": wavlm_adapter,
    "hubert_mini_adapter": hubert_mini_adapter,
}
