"""Random-initialised upstream checkpoints in S3PRL's own formats, for tests and benchmarks offline.

``hubert_local`` reads ``{task_cfg, model_cfg, model_weight, dictionaries_symbols}``, ``wav2vec2_local``
the same without ``dictionaries_symbols``, ``wavlm_local`` reads ``{cfg, model}``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from effspeech.pretrain.model import SMALL

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
        raise ValueError(f"unknown arch {arch!r}; valid: {', '.join(ARCHS)}")
    family, config = ARCHS[arch]
    config = {**config, **overrides}
    torch.manual_seed(seed)
    if family == "wavlm":
        from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

        return WavLM(WavLMConfig(config)), {"cfg": config}
    if family == "hubert":
        from s3prl.upstream.hubert.hubert_model import HubertConfig, HubertModel, HubertPretrainingConfig

        symbols = [[str(index) for index in range(100)]]
        task = {"label_rate": 50.0, "sample_rate": 16000, "normalize": False}
        config = {"label_rate": task["label_rate"], **config}
        network = HubertModel(HubertConfig(**config), HubertPretrainingConfig(**task), symbols)
        return network, {"task_cfg": task, "model_cfg": config, "dictionaries_symbols": symbols}
    from s3prl.upstream.wav2vec2.wav2vec2_model import AudioPretrainingConfig, Wav2Vec2Config, Wav2Vec2Model

    task = {"sample_rate": 16000, "normalize": False}
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
    torch.save(build_state(arch, seed, **overrides), out)
    return out


def register(subparsers) -> None:
    parser = subparsers.add_parser("make-checkpoint", help="write a random-initialised upstream checkpoint")
    parser.add_argument("--arch", required=True, choices=sorted(ARCHS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.set_defaults(func=lambda args: print(make_checkpoint(args.arch, args.seed, args.out)))
