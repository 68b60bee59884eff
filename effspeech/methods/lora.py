"""LoRA (Hu et al., 2022): ``W + (alpha / r) B A`` with ``B`` zero-initialised.

The update is a ``torch.nn.utils.parametrize`` parametrization of the weight, not a forward hook:
S3PRL's attention hands ``q_proj.weight`` & co. straight to ``F.multi_head_attention_forward``, so
hooks on the projection modules never fire, while every read of the weight goes through this."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from effspeech.anatomy import LINEAR_ROLES, Anatomy
from effspeech.errors import ConfigError
from effspeech.injector import Injector
from effspeech.method import AdapterMethod, MethodConfig, require_positive
from effspeech.methods.folding import Foldable, FoldedTensors
from effspeech.registry import register_adapter


class LowRankUpdate(nn.Module):
    """The parametrization ``W -> W + scale * B @ A``."""

    def __init__(self, out_features: int, in_features: int, rank: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.A = nn.Parameter(torch.empty(rank, in_features))
        self.B = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))

    def delta(self) -> torch.Tensor:
        return self.scale * (self.B @ self.A)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.delta().to(weight.dtype)


@dataclass
class LoraConfig(MethodConfig):
    rank: int = 8
    alpha: float | None = None  # None: alpha = rank, a scale of 1
    targets: list[str] = field(default_factory=lambda: ["q", "k"])
    layers: list[int] | None = None

    def validate(self) -> None:
        require_positive(self, "rank")
        if self.alpha is not None:
            require_positive(self, "alpha")
        unknown = [target for target in self.targets if target not in LINEAR_ROLES]
        if unknown or not self.targets:
            name = type(self).__name__
            raise ConfigError(f"{name}.targets {self.targets} must be a non-empty subset of {list(LINEAR_ROLES)}")


@register_adapter("lora")
class Lora(Foldable, AdapterMethod):
    Config = LoraConfig

    def update(self, linear: nn.Linear, scale: float) -> nn.Module:
        """The parametrization of one target's weight."""
        return LowRankUpdate(linear.out_features, linear.in_features, self.config.rank, scale)

    def attach(self, anatomy: Anatomy, injector: Injector) -> nn.Module:
        scale = (self.config.alpha or self.config.rank) / self.config.rank
        self.folded = FoldedTensors()
        owner = nn.ModuleDict()
        for index in anatomy.layer_indices(self.config.layers):
            per_layer = nn.ModuleDict()
            for target in self.config.targets:
                linear = anatomy.target(index, target)
                per_layer[target] = self.update(linear, scale)
                self.folded.parametrize(injector, linear, "weight", per_layer[target])
            owner[str(index)] = per_layer
        return owner
