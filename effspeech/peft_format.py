"""Hugging Face PEFT's adapter format, both ways: ``adapter_config.json`` + ``adapter_model.safetensors``
with transformers module names (``base_model.model.encoder.layers.0.attention.q_proj.lora_A.weight``).

lora and dora map to PEFT's LoRA (``use_dora``), ia3 to its IA3 (keys and values scaled on their
output, the FFN's output projection on its input, PEFT's ``feedforward_modules``). Module names are
the transformers scheme's whatever model the adapters were trained on: effspeech's state keys are by
layer and role, so an adapter trained on S3PRL's HuBERT is written for transformers' HuBERT with the
same weights. A method without a PEFT counterpart is refused by name before anything is written."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from effspeech.anatomy import LINEAR_ROLES
from effspeech.anatomy_transformers import TransformersAnatomy
from effspeech.errors import ConfigError, MissingFileError
from effspeech.files import atomic_write

if TYPE_CHECKING:
    from effspeech.engine import AdapterSet

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
PREFIX = "base_model.model.encoder.layers"
MODULES = {role: path.rpartition(".")[2] for role, path in TransformersAnatomy.sites.items()}  # q -> q_proj
ROLES = {MODULES[role]: role for role in LINEAR_ROLES}  # q_proj -> q
IA3_SITES = {"key": "k", "value": "v", "ffn": "fc2"}  # effspeech's ia3 vectors -> the module each scales
IA3_MODULES = sorted(MODULES[role] for role in IA3_SITES.values())


def _path(layer: str, role: str) -> str:
    return f"{PREFIX}.{layer}.{TransformersAnatomy.sites[role]}"


def to_peft(spec: dict[str, dict], state: dict[str, torch.Tensor], family: str) -> tuple[dict, dict]:
    """PEFT's config and tensors for an adapter ``spec`` and its ``state`` (``AdapterSet.state_dict()``)."""
    if len(spec) != 1:
        raise ConfigError(f"a PEFT directory holds one method; these adapters have {sorted(spec)}: export one")
    ((method, config),) = spec.items()
    if method not in ("lora", "dora", "ia3"):
        raise ConfigError(f"{method} has no PEFT counterpart (PEFT has lora, dora and ia3): nothing written")
    targets = config["targets"] if method != "ia3" else list(IA3_SITES.values())
    attention = [t for t in targets if t in ("q", "k", "v", "out")]
    if family == "wavlm" and attention:
        raise ConfigError(
            f"{method} on WavLM's attention ({attention}): transformers' WavLM reads those weights straight into "
            "F.multi_head_attention_forward, so PEFT's modules there would not take effect; nothing written"
        )
    tensors = {}
    for key, value in state.items():
        if method == "ia3":  # ia3.<layer>.<key|value|ffn>
            _, layer, name = key.split(".")
            role = IA3_SITES[name]
            vector = value.detach().reshape(1, -1) if role == "fc2" else value.detach().reshape(-1, 1)
            tensors[f"{_path(layer, role)}.ia3_l"] = vector
        else:  # <lora|dora>.<layer>.<role>.<A|B|magnitude>
            _, layer, part, name = key.split(".")
            suffix = {"A": "lora_A.weight", "B": "lora_B.weight", "magnitude": "lora_magnitude_vector"}[name]
            tensors[f"{_path(layer, part)}.{suffix}"] = value.detach()
    layers = config.get("layers")
    modules = sorted({MODULES[t] for t in targets})
    if method == "ia3" and layers is not None:
        raise ConfigError(f"ia3 on layers {layers}: PEFT's IA3 has no layer selection; nothing written")
    if method == "ia3":
        peft_config = {"peft_type": "IA3", "target_modules": modules, "feedforward_modules": [MODULES["fc2"]]}
    else:
        peft_config = {
            "peft_type": "LORA",
            "r": config["rank"],
            "lora_alpha": config["alpha"] or config["rank"],
            "target_modules": modules,
            "use_dora": method == "dora",
            "bias": "none",
            "lora_dropout": 0.0,
        }
    if method != "ia3":
        peft_config["layers_to_transform"] = layers
    peft_config.update(fan_in_fan_out=False, inference_mode=True, task_type=None)
    return peft_config, {key: value.contiguous() for key, value in tensors.items()}


def save_peft(spec: dict[str, dict], state: dict[str, torch.Tensor], family: str, directory: str | Path) -> Path:
    """Write a PEFT adapter directory; a refused method writes nothing, and each file is written whole."""
    from safetensors.torch import save

    config, tensors = to_peft(spec, state, family)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / WEIGHTS, save(tensors))
    atomic_write(directory / CONFIG, json.dumps(config, indent=2).encode())
    return directory


def read_peft(directory: str | Path) -> tuple[dict[str, dict], dict[str, torch.Tensor]]:
    """The effspeech spec and state of a PEFT LoRA (or DoRA) or IA3 directory."""
    from safetensors.torch import load_file

    directory = Path(directory)
    for name in (CONFIG, WEIGHTS):
        if not (directory / name).is_file():
            raise MissingFileError(f"{directory / name} not found: not a PEFT adapter directory")
    config = json.loads((directory / CONFIG).read_text())
    tensors = load_file(str(directory / WEIGHTS))
    kind = config.get("peft_type")
    if kind not in ("LORA", "IA3"):
        raise ConfigError(f"{directory / CONFIG}: peft_type {kind!r}; effspeech reads LORA (with DoRA) and IA3")
    unsupported = {
        "rank_pattern": {}, "alpha_pattern": {}, "bias": "none", "modules_to_save": None, "fan_in_fan_out": False,
        "layer_replication": None, "lora_bias": False,
    }  # fmt: skip
    for key, default in unsupported.items():
        if config.get(key) not in (None, default):
            raise ConfigError(f"{directory / CONFIG}: {key} = {config[key]!r} is not supported (only {default!r})")
    modules = config.get("target_modules")
    if not isinstance(modules, list) or any(module not in ROLES for module in modules):
        raise ConfigError(
            f"{directory / CONFIG}: target_modules {modules!r}: effspeech reads a list of {sorted(ROLES)}"
        )
    layers = config.get("layers_to_transform")
    layers = [layers] if isinstance(layers, int) else layers
    state = {}
    if kind == "IA3":
        feedforward = config.get("feedforward_modules")
        if sorted(modules) != IA3_MODULES or feedforward not in ([MODULES["fc2"]], MODULES["fc2"]):
            raise ConfigError(f"{directory / CONFIG}: effspeech's ia3 scales k_proj, v_proj and output_dense (input)")
        by_role = {role: name for name, role in IA3_SITES.items()}
        for key, value in tensors.items():
            layer, role = _layer_and_role(key, ".ia3_l")
            state[f"ia3.{layer}.{by_role[role]}"] = value.reshape(-1)
        return {"ia3": {"layers": layers}}, state
    method = "dora" if config.get("use_dora") else "lora"
    rank, alpha = config["r"], config.get("lora_alpha", 8)
    if config.get("use_rslora"):  # scale alpha / sqrt(r) is effspeech's alpha' / r with alpha' = alpha sqrt(r)
        alpha = alpha * math.sqrt(rank)
    suffixes = {".lora_A.weight": "A", ".lora_B.weight": "B", ".lora_magnitude_vector": "magnitude"}
    for key, value in tensors.items():
        suffix = next((s for s in suffixes if key.endswith(s)), None)
        if suffix is None:
            raise ConfigError(f"{directory / WEIGHTS}: unexpected tensor {key}")
        layer, role = _layer_and_role(key, suffix)
        state[f"{method}.{layer}.{role}.{suffixes[suffix]}"] = value
    targets = [ROLES[module] for module in modules]
    return {method: {"rank": rank, "alpha": alpha, "targets": targets, "layers": layers}}, state


def _layer_and_role(key: str, suffix: str) -> tuple[str, str]:
    path = key.removeprefix("base_model.model.").removesuffix(suffix)
    parts = path.split(".")
    if parts[:2] != ["encoder", "layers"] or parts[-1] not in ROLES:
        raise ConfigError(f"PEFT tensor {key}: not on a projection of encoder.layers.<i>")
    return parts[2], ROLES[parts[-1]]


def load_peft(model: nn.Module, directory: str | Path) -> AdapterSet:
    """Attach the PEFT adapter in ``directory`` to ``model`` (transformers' or S3PRL's) and load its tensors."""
    from effspeech.engine import attach

    spec, state = read_peft(directory)
    adapters = attach(model, spec)
    try:
        adapters.load_state_dict(state)
    except BaseException:
        adapters.detach()
        raise
    return adapters
