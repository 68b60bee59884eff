"""Random-initialised upstream checkpoints in S3PRL's own formats, for tests and benchmarks offline.

``hubert_local`` reads ``{task_cfg, model_cfg, model_weight, dictionaries_symbols}``, ``wav2vec2_local``
the same without ``dictionaries_symbols``, ``wavlm_local`` reads ``{cfg, model}``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from effspeech.errors import UnknownNameError
from effspeech.superb.compat import quiet_s3prl
from effspeech.superb.records import atomic_write, torch_bytes

# Total conv stride 320 (50 Hz frames), as S3PRL's experts assume. At this size the conv extractor
# dominates CPU compute, so its channels stay at 128. Masking, dropout, feature_grad_mult and the
# 10x features_pen follow fairseq's HuBERT Base recipe; encoder_layerdrop is 0 because dropping one of
# four layers removes a quarter of the model. skip_nomask: Base weighs unmasked frames 0, so their
# logits are not computed.
SMALL = {  # the shape of the shipped hubert_mini (effspeech pretrain)
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
HUBERT_TASK = {"label_rate": 50.0, "sample_rate": 16000, "normalize": False}  # hubert_local's task_cfg

# The "_base" shapes are the published Base models' (12 layers, 768 dims, 512-channel convs);
# "_tiny" keep the strides (product 320, which S3PRL's experts assume) at a size that builds in a second.
TINY = {
    "encoder_layers": 2,
    "encoder_embed_dim": 128,
    "encoder_ffn_embed_dim": 256,
    "encoder_attention_heads": 4,
    "conv_feature_layers": "[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2",
    "conv_pos": 16,
    "conv_pos_groups": 4,
}
WAVLM = {"relative_position_embedding": True, "gru_rel_pos": True, "num_buckets": 320, "max_distance": 800}
ARCHS = {
    "hubert_base": ("hubert", {}),
    "hubert_tiny": ("hubert", TINY),
    "wav2vec2_base": ("wav2vec2", {}),
    "wav2vec2_tiny": ("wav2vec2", TINY),
    "wavlm_base": ("wavlm", WAVLM),
    "wavlm_tiny": ("wavlm", {**WAVLM, **TINY, "num_buckets": 32, "max_distance": 128}),
    "hubert_small": ("hubert", SMALL),  # the shape of the shipped hubert_mini (effspeech pretrain)
    "hubert_mini": ("hubert", SMALL),  # random stand-in while effspeech/assets/hubert_mini.pt is absent
}


def build_network(arch: str, seed: int = 0, **overrides) -> tuple[nn.Module, dict]:
    """A random-initialised ``arch`` network and its checkpoint dict without the weights."""
    if arch not in ARCHS:
        raise UnknownNameError(f"unknown arch {arch!r}; valid: {', '.join(ARCHS)}")
    family, config = ARCHS[arch]
    config = {**config, **overrides}
    torch.manual_seed(seed)
    return build_family_network(family, config)


def build_family_network(family: str, config: dict, normalize: bool = False) -> tuple[nn.Module, dict]:
    """A random ``family`` network of model ``config`` and its checkpoint dict without the weights;
    ``normalize``: the checkpoint says its waves are normalised (S3PRL's experts then do it)."""
    with quiet_s3prl():
        return _build(family, config, normalize)


def _build(family: str, config: dict, normalize: bool) -> tuple[nn.Module, dict]:
    if family == "wavlm":
        from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

        config = {**config, "normalize": True} if normalize else config
        return WavLM(WavLMConfig(config)), {"cfg": config}
    if family == "hubert":
        from s3prl.upstream.hubert.hubert_model import HubertConfig, HubertModel, HubertPretrainingConfig

        symbols = [[str(index) for index in range(100)]]
        task = {**HUBERT_TASK, "normalize": normalize}
        config = {"label_rate": task["label_rate"], **config}
        network = HubertModel(HubertConfig(**config), HubertPretrainingConfig(**task), symbols)
        return network, {"task_cfg": task, "model_cfg": config, "dictionaries_symbols": symbols}
    from s3prl.upstream.wav2vec2.wav2vec2_model import AudioPretrainingConfig, Wav2Vec2Config, Wav2Vec2Model

    task = {"sample_rate": 16000, "normalize": normalize}
    AudioPretrainingConfig(**task)  # refuse a task config that S3PRL would not read
    return Wav2Vec2Model(Wav2Vec2Config(**config)), {"task_cfg": task, "model_cfg": config}


def build_state(arch: str, seed: int = 0, **overrides) -> dict:
    """The checkpoint dict of a random-initialised ``arch`` (``overrides`` change model config fields)."""
    network, state = build_network(arch, seed, **overrides)
    state["model" if "cfg" in state else "model_weight"] = network.state_dict()
    return state


def make_checkpoint(arch: str, seed: int, out: str | Path, **overrides) -> Path:
    """Write a random ``arch`` checkpoint that ``s3prl.hub.<family>_local(ckpt=out)`` loads."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(out, torch_bytes(build_state(arch, seed, **overrides)))
