"""What each benchmarked method does to a loaded S3PRL upstream before training: which tensors train,
whether the upstream runs with gradients, and what the trainer would save of it.

Besides the adapter methods of ``effspeech.available_adapters()``: ``none`` (S3PRL's weighted-sum
baseline, upstream frozen under ``no_grad``), ``finetune`` (every upstream tensor trains, the CNN
extractor included), ``finetune_cnn_frozen`` (S3PRL's ``-f``: ``feature_grad_mult = 0`` keeps the
extractor under ``no_grad``) and ``peft_lora`` (PEFT's LoRA on ``q_proj``/``k_proj``, the anchor)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import effspeech
from effspeech.anatomy import find_anatomy
from effspeech.errors import UnknownNameError
from effspeech.superb.methods import BASELINES as METHOD_BASELINES

NONE, FINETUNE = METHOD_BASELINES
FINETUNE_CNN_FROZEN = "finetune_cnn_frozen"
PEFT_LORA = "peft_lora"
BASELINES = (NONE, FINETUNE, FINETUNE_CNN_FROZEN)
PEFT_TARGETS = ["q_proj", "k_proj"]  # the same projections as effspeech's lora default (q, k)
LORA_RANK = 8


@dataclass
class Setup:
    trainable: list[nn.Parameter]  # upstream tensors the optimizer updates (the head's come on top)
    upstream_grad: bool  # False: the upstream forward runs under no_grad
    state: Callable[[], dict[str, torch.Tensor]]  # the upstream part of the saved checkpoint
    adapters: effspeech.AdapterSet | None = None


def peft_available() -> bool:
    return importlib.util.find_spec("peft") is not None


def expand_methods(names: list[str]) -> list[str]:
    """The runs behind a ``--methods`` list: ``finetune`` brings its CNN-frozen variant, ``lora`` the PEFT
    anchor when ``peft`` is installed; unknown names fail here, before any subprocess starts."""
    known = set(BASELINES) | {PEFT_LORA} | set(effspeech.available_adapters())
    runs: list[str] = []
    for name in names:
        if name not in known:
            raise UnknownNameError(f"unknown bench method {name!r}; valid: {', '.join(sorted(known))}")
        extra = {FINETUNE: [FINETUNE_CNN_FROZEN], "lora": [PEFT_LORA] if peft_available() else []}.get(name, [])
        runs += [run for run in (name, *extra) if run not in runs]
    return runs


def prepare(expert: nn.Module, method: str) -> Setup:
    """Freeze/unfreeze or attach for ``method``; the expert keeps S3PRL's own settings otherwise."""
    network = find_anatomy(expert).network
    if method in BASELINES:
        network.requires_grad_(method != NONE)
        if method == FINETUNE:
            network.feature_grad_mult = 1.0
        if method == FINETUNE_CNN_FROZEN:  # its tensors never see a gradient under no_grad: not trained
            network.feature_extractor.requires_grad_(False)
        trainable = [parameter for parameter in network.parameters() if parameter.requires_grad]
        state = expert.state_dict if method != NONE else dict
        return Setup(trainable, method != NONE, state)
    if method == PEFT_LORA:
        return _prepare_peft(network)
    adapters = effspeech.attach(expert, method)
    return Setup(list(adapters.parameters()), True, adapters.state_dict, adapters)


def _prepare_peft(network: nn.Module) -> Setup:
    from peft import LoraConfig, inject_adapter_in_model

    network.requires_grad_(False)
    config = LoraConfig(r=LORA_RANK, lora_alpha=LORA_RANK, target_modules=PEFT_TARGETS)
    inject_adapter_in_model(config, network)
    named = {name: parameter for name, parameter in network.named_parameters() if "lora_" in name}
    for parameter in named.values():
        parameter.requires_grad_(True)
    return Setup(list(named.values()), True, lambda: {name: p.detach() for name, p in named.items()})
