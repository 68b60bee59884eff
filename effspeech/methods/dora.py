"""DoRA (Liu et al., ICML 2024): weight-decomposed LoRA, ``m * (W + s B A) / ||W + s B A||`` with the
norm taken per output row (over the inputs), the magnitude ``m`` initialised to the rows' norms of
``W`` and ``B`` to zero, so the weight is unchanged at attach. The norm is detached from the graph,
as the paper recommends (section 4.3) and PEFT does: the update's direction trains through ``B A``,
its length through ``m``. Everything else (targets, layers, merge) is LoRA's."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from effspeech.methods.lora import Lora, LoraConfig, LowRankUpdate
from effspeech.registry import register_adapter


class DecomposedUpdate(LowRankUpdate):
    """The parametrization ``W -> m * (W + scale B A) / ||W + scale B A||_row``."""

    def __init__(self, weight: torch.Tensor, rank: int, scale: float) -> None:
        super().__init__(weight.size(0), weight.size(1), rank, scale)
        self.magnitude = nn.Parameter(weight.detach().norm(dim=1).clone())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        directed = super().forward(weight)
        norm = directed.norm(dim=1, keepdim=True).detach()
        return self.magnitude.to(weight.dtype).unsqueeze(1) * directed / norm


@dataclass
class DoraConfig(LoraConfig):
    pass


@register_adapter("dora")
class Dora(Lora):
    Config = DoraConfig

    def update(self, linear: nn.Linear, scale: float) -> nn.Module:
        return DecomposedUpdate(linear.weight, self.config.rank, scale)
