"""The small HuBERT architectures, built with S3PRL's own classes and saved in ``hubert_local``'s format."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from effspeech.errors import ConfigError
from effspeech.superb.random_upstream import HUBERT_TASK, SMALL
from effspeech.superb.records import atomic_write, torch_bytes

ARCHS = {"hubert_small": SMALL}


def build_model(
    arch: str, clusters: int | Sequence[int], seed: int, overrides: dict | None = None
) -> tuple[nn.Module, dict]:
    """A random-initialised S3PRL ``HubertModel`` predicting one codebook of targets per entry of
    ``clusters``, and its checkpoint header (everything ``hubert_local`` reads except the weights).
    ``overrides`` replace arch keys. Several codebooks get one output projection each
    (``untie_final_proj``), as fairseq's multi-target HuBERT."""
    from s3prl.upstream.hubert.hubert_model import HubertConfig, HubertModel, HubertPretrainingConfig

    if arch not in ARCHS:
        raise ConfigError(f"unknown arch {arch!r}; valid: {', '.join(ARCHS)}")
    unknown = set(overrides or {}) - set(ARCHS[arch])
    if unknown:
        raise ConfigError(f"unknown {arch} keys {sorted(unknown)}; valid: {', '.join(ARCHS[arch])}")
    sizes = [clusters] if isinstance(clusters, int) else list(clusters)
    config = {"label_rate": HUBERT_TASK["label_rate"], **ARCHS[arch], **(overrides or {})}
    if len(sizes) > 1:
        config["untie_final_proj"] = True
    symbols = [[str(index) for index in range(size)] for size in sizes]
    torch.manual_seed(seed)
    model = HubertModel(HubertConfig(**config), HubertPretrainingConfig(**HUBERT_TASK), symbols)
    return model, {"task_cfg": dict(HUBERT_TASK), "model_cfg": config, "dictionaries_symbols": symbols}


def save_checkpoint(model: nn.Module, header: dict, out: Path, extra: dict) -> Path:
    """Write ``header`` + the weights in fp16 (half the file; ``load_state_dict`` copies them into the
    fp32 parameters) + ``extra`` under ``"pretrain"``, a key ``hubert_local`` ignores."""
    weights = {
        name: tensor.detach().to("cpu", torch.float16 if tensor.is_floating_point() else tensor.dtype)
        for name, tensor in model.state_dict().items()
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(out, torch_bytes({**header, "model_weight": weights, "pretrain": extra}))
