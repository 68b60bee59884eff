"""S3PRL checkpoints <-> transformers ``save_pretrained`` directories, for HuBERT, wav2vec 2.0 and WavLM,
without fairseq: the weights are renamed (one table, read both ways) and the configs translated.

Pretraining-only heads (HuBERT's ``final_proj`` and ``label_embs_concat``, wav2vec 2.0's quantizer and
projections) have no place in transformers' base models and are dropped; going back, they are
random-initialised, as a downstream never reads them. Adapter states are keyed by layer and role, so
one trained on either format loads on the converted other."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from effspeech.errors import ConfigError, MissingFileError
from effspeech.files import atomic_write
from effspeech.superb.compat import quiet_s3prl
from effspeech.superb.records import torch_bytes

# (S3PRL name, transformers name) patterns; "#" stands for a layer or block index
RENAMES = [
    ("mask_emb", "masked_spec_embed"),
    ("feature_extractor.conv_layers.#.0.", "feature_extractor.conv_layers.#.conv."),
    ("feature_extractor.conv_layers.#.2.1.", "feature_extractor.conv_layers.#.layer_norm."),  # layer norm mode
    ("feature_extractor.conv_layers.#.2.", "feature_extractor.conv_layers.#.layer_norm."),  # group norm (block 0)
    ("layer_norm.", "feature_projection.layer_norm."),
    ("post_extract_proj.", "feature_projection.projection."),
    ("encoder.pos_conv.0.bias", "encoder.pos_conv_embed.conv.bias"),
    ("encoder.pos_conv.0.weight_g", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    ("encoder.pos_conv.0.weight_v", "encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    ("encoder.layer_norm.", "encoder.layer_norm."),
    ("encoder.layers.#.self_attn.grep_a", "encoder.layers.#.attention.gru_rel_pos_const"),
    ("encoder.layers.#.self_attn.grep_linear.", "encoder.layers.#.attention.gru_rel_pos_linear."),
    ("encoder.layers.#.self_attn.relative_attention_bias.", "encoder.layers.#.attention.rel_attn_embed."),
    ("encoder.layers.#.self_attn.", "encoder.layers.#.attention."),
    ("encoder.layers.#.self_attn_layer_norm.", "encoder.layers.#.layer_norm."),
    ("encoder.layers.#.fc1.", "encoder.layers.#.feed_forward.intermediate_dense."),
    ("encoder.layers.#.fc2.", "encoder.layers.#.feed_forward.output_dense."),
    ("encoder.layers.#.final_layer_norm.", "encoder.layers.#.final_layer_norm."),
]
PRETRAINING_ONLY = ("final_proj.", "label_embs_concat", "project_q.", "quantizer.", "target_glu.")


def _rename(name: str, source: int, targets: set[str]) -> str | None:
    """``name`` in the other format (``source`` 0: from S3PRL, 1: from transformers), the first rule's
    result that ``targets`` (the other model's names) has; None: no counterpart."""
    for pair in RENAMES:
        match = re.match(re.escape(pair[source]).replace("\\#", r"(\d+)"), name)
        if match:
            target = pair[1 - source]
            for index in match.groups():
                target = target.replace("#", index, 1)
            if target + name[match.end() :] in targets:
                return target + name[match.end() :]
    return None


def _s3prl_config(family: str, state: dict) -> Any:
    """The S3PRL model config object (defaults filled in) of a checkpoint dict."""
    with quiet_s3prl():
        if family == "wavlm":
            from s3prl.upstream.wavlm.WavLM import WavLMConfig

            return WavLMConfig(state["cfg"])
        if family == "hubert":
            from s3prl.upstream.hubert.hubert_model import HubertConfig

            return HubertConfig(**state["model_cfg"])
        from s3prl.upstream.wav2vec2.wav2vec2_model import Wav2Vec2Config

        return Wav2Vec2Config(**state["model_cfg"])


def _family_of_checkpoint(state: dict) -> str:
    if "cfg" in state:
        return "wavlm"
    return "hubert" if "dictionaries_symbols" in state else "wav2vec2"


def to_transformers(source: str | Path, out: str | Path) -> Path:
    """Convert an S3PRL checkpoint file into a transformers ``save_pretrained`` directory."""
    import transformers

    from effspeech.superb.transformers_upstream import MODEL_CLASSES, PREPROCESSOR

    source = Path(source)
    if not source.is_file():
        raise MissingFileError(f"S3PRL checkpoint not found: {source}")
    state = torch.load(source, map_location="cpu", weights_only=False)
    family = _family_of_checkpoint(state)
    cfg = _s3prl_config(family, state)
    convs = eval(cfg.conv_feature_layers, {"__builtins__": {}})  # "[(512,10,5)] + [(512,3,2)] * 4 ...", as S3PRL
    extractor = {"default": "group", "layer_norm": "layer"}[cfg.extractor_mode]
    config: dict[str, Any] = {
        "hidden_size": cfg.encoder_embed_dim,
        "num_hidden_layers": cfg.encoder_layers,
        "num_attention_heads": cfg.encoder_attention_heads,
        "intermediate_size": cfg.encoder_ffn_embed_dim,
        "hidden_act": cfg.activation_fn,
        "conv_dim": [c[0] for c in convs],
        "conv_kernel": [c[1] for c in convs],
        "conv_stride": [c[2] for c in convs],
        "conv_bias": cfg.conv_bias,
        "feat_extract_norm": extractor,
        "num_conv_pos_embeddings": cfg.conv_pos,
        "num_conv_pos_embedding_groups": cfg.conv_pos_groups,
        "do_stable_layer_norm": cfg.layer_norm_first,
        "hidden_dropout": cfg.dropout,
        "attention_dropout": cfg.attention_dropout,
        "activation_dropout": cfg.activation_dropout,
        "feat_proj_dropout": cfg.dropout_input,
        "layerdrop": cfg.encoder_layerdrop,
        "layer_norm_eps": 1e-5,
    }
    if family == "wavlm":
        if not (cfg.relative_position_embedding and cfg.gru_rel_pos):
            raise ConfigError(f"{source}: transformers' WavLM has the gated relative position bias; this one has not")
        config.update(num_buckets=cfg.num_buckets, max_bucket_distance=cfg.max_distance)
    model_class = getattr(transformers, MODEL_CLASSES[family])
    model = model_class(model_class.config_class(**config))
    weights = state["model"] if family == "wavlm" else state["model_weight"]
    renamed, names = {}, set(model.state_dict())
    for name, tensor in weights.items():
        target = _rename(name, 0, names)
        if target is None:
            if name.startswith(PRETRAINING_ONLY):
                continue
            raise ConfigError(f"{source}: tensor {name} has no transformers counterpart")
        renamed[target] = tensor
    missing, unexpected = model.load_state_dict(renamed, strict=False)
    if missing or unexpected:
        raise ConfigError(f"{source}: converted weights do not fit {model_class.__name__}: missing "
                          f"{missing}, unexpected {unexpected}")  # fmt: skip
    out = Path(out)
    model.save_pretrained(out)
    normalize = bool(state.get("task_cfg", {}).get("normalize", False) or getattr(cfg, "normalize", False))
    preprocessor = {"do_normalize": normalize, "return_attention_mask": extractor == "layer", "sampling_rate": 16000}
    atomic_write(out / PREPROCESSOR, json.dumps(preprocessor, indent=2).encode())
    return out


def to_s3prl(source: str | Path, out: str | Path) -> Path:
    """Convert a transformers ``save_pretrained`` directory (HuBERT, wav2vec 2.0, WavLM) into an S3PRL checkpoint."""
    import transformers

    from effspeech.superb.random_upstream import build_family_network
    from effspeech.superb.transformers_upstream import PREPROCESSOR

    source = Path(source)
    if not (source / "config.json").is_file():
        raise MissingFileError(f"not a transformers save_pretrained directory (no config.json): {source}")
    hf = transformers.AutoConfig.from_pretrained(source, local_files_only=True)
    family = {"hubert": "hubert", "wav2vec2": "wav2vec2", "wavlm": "wavlm"}.get(hf.model_type)
    if family is None:
        raise ConfigError(f"{source}: model_type {hf.model_type!r}; S3PRL has hubert, wav2vec2 and wavlm")
    model = transformers.AutoModel.from_pretrained(source, local_files_only=True)
    convs = " + ".join(f"[({d},{k},{s})]" for d, k, s in zip(hf.conv_dim, hf.conv_kernel, hf.conv_stride))
    config: dict[str, Any] = {
        "encoder_layers": hf.num_hidden_layers,
        "encoder_embed_dim": hf.hidden_size,
        "encoder_ffn_embed_dim": hf.intermediate_size,
        "encoder_attention_heads": hf.num_attention_heads,
        "activation_fn": hf.hidden_act,
        "conv_feature_layers": convs,
        "conv_bias": hf.conv_bias,
        "extractor_mode": {"group": "default", "layer": "layer_norm"}[hf.feat_extract_norm],
        "conv_pos": hf.num_conv_pos_embeddings,
        "conv_pos_groups": hf.num_conv_pos_embedding_groups,
        "layer_norm_first": hf.do_stable_layer_norm,
        "dropout": hf.hidden_dropout,
        "attention_dropout": hf.attention_dropout,
        "activation_dropout": hf.activation_dropout,
        "dropout_input": hf.feat_proj_dropout,
        "encoder_layerdrop": hf.layerdrop,
    }
    if family == "wavlm":
        config.update(relative_position_embedding=True, gru_rel_pos=True, num_buckets=hf.num_buckets,
                      max_distance=hf.max_bucket_distance)  # fmt: skip
    preprocessor = source / PREPROCESSOR
    normalize = preprocessor.is_file() and json.loads(preprocessor.read_text()).get("do_normalize", False)
    network, state = build_family_network(family, config, normalize=normalize)
    weights = network.state_dict()
    for name, tensor in model.state_dict().items():
        target = _rename(name, 1, set(weights))
        if target is None:
            raise ConfigError(f"{source}: tensor {name} has no S3PRL counterpart")
        weights[target] = tensor
    state["model" if family == "wavlm" else "model_weight"] = weights
    return atomic_write(out, torch_bytes(state))
