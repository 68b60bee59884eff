"""The small HuBERT architectures, built with S3PRL's own classes and saved in ``hubert_local``'s format."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

# Total conv stride 320 (50 Hz frames), as S3PRL's experts assume. At this size the conv extractor
# dominates CPU compute, so its channels stay at 128. Masking, dropout, feature_grad_mult and the
# 10x features_pen follow fairseq's HuBERT Base recipe; encoder_layerdrop is 0 because dropping one of
# four layers removes a quarter of the model. skip_nomask: Base weighs unmasked frames 0, so their
# logits are not computed.
SMALL = {
    "encoder_layers": 4,
    "encoder_embed_dim": 256,
    "encoder_ffn_embed_dim": 1024,
    "encoder_attention_heads": 4,
    "conv_feature_layers": "[(128,10,5)] + [(128,3,2)] * 4 + [(128,2,2)] * 2",
    "conv_pos": 64,
    "conv_pos_groups": 16,
    "final_dim": 128,
    "mask_prob": 0.8,
    "mask_length": 10,
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "dropout_input": 0.1,
    "dropout_features": 0.1,
    "encoder_layerdrop": 0.0,
    "feature_grad_mult": 0.1,
    "skip_nomask": True,
}
ARCHS = {"hubert_small": SMALL}
TASK = {"label_rate": 50.0, "sample_rate": 16000, "normalize": False}


def build_model(
    arch: str, clusters: int | Sequence[int], seed: int, overrides: dict | None = None
) -> tuple[nn.Module, dict]:
    """A random-initialised S3PRL ``HubertModel`` predicting one codebook of targets per entry of
    ``clusters``, and its checkpoint header (everything ``hubert_local`` reads except the weights).
    ``overrides`` replace arch keys. Several codebooks get one output projection each
    (``untie_final_proj``), as fairseq's multi-target HuBERT."""
    from s3prl.upstream.hubert.hubert_model import HubertConfig, HubertModel, HubertPretrainingConfig

    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; valid: {', '.join(ARCHS)}")
    unknown = set(overrides or {}) - set(ARCHS[arch])
    if unknown:
        raise ValueError(f"unknown {arch} keys {sorted(unknown)}; valid: {', '.join(ARCHS[arch])}")
    sizes = [clusters] if isinstance(clusters, int) else list(clusters)
    config = {"label_rate": TASK["label_rate"], **ARCHS[arch], **(overrides or {})}
    if len(sizes) > 1:
        config["untie_final_proj"] = True
    symbols = [[str(index) for index in range(size)] for size in sizes]
    torch.manual_seed(seed)
    model = HubertModel(HubertConfig(**config), HubertPretrainingConfig(**TASK), symbols)
    return model, {"task_cfg": dict(TASK), "model_cfg": config, "dictionaries_symbols": symbols}


def save_checkpoint(model: nn.Module, header: dict, out: Path, extra: dict) -> Path:
    """Write ``header`` + the weights in fp16 (half the file; ``load_state_dict`` copies them into the
    fp32 parameters) + ``extra`` under ``"pretrain"``, a key ``hubert_local`` ignores."""
    weights = {
        name: tensor.detach().to("cpu", torch.float16 if tensor.is_floating_point() else tensor.dtype)
        for name, tensor in model.state_dict().items()
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    torch.save({**header, "model_weight": weights, "pretrain": extra}, partial)
    partial.replace(out)
    return out
