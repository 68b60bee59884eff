"""S3PRL-style hub entries, one per effspeech entry (``hubert_adapter``, ``wav2vec2_adapter``,
``wavlm_adapter``, ``hubert_mini_adapter``): ``<name>(ckpt=None, adapter=None, refresh=False, **kwargs)``
returns S3PRL's expert with the adapters attached (``effspeech.adapters_of(expert)`` is their
``AdapterSet``). Each is ``effspeech.superb.upstream.load_upstream``, where the entries are defined;
``kwargs`` go to S3PRL's expert (``model_config``, ``legacy``, ``fairseq``)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from effspeech.superb import upstream


def _hub_function(name: str) -> Callable[..., nn.Module]:
    def entry(ckpt: str | None = None, adapter=None, refresh: bool = False, **kwargs) -> nn.Module:
        return upstream.load_upstream(name, ckpt, adapter, refresh=refresh, **kwargs)[0]

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = f"{upstream.ENTRIES[name].description}, with adapters."
    return entry


ENTRIES: dict[str, Callable[..., nn.Module]] = {name: _hub_function(name) for name in upstream.ENTRIES}
globals().update(ENTRIES)  # hubert_adapter, wav2vec2_adapter, ...: S3PRL's hubs find entries as module attributes
__all__ = ["ENTRIES", *ENTRIES]
