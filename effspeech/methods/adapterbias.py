"""AdapterBias (Fu et al., 2022): a token-dependent shift ``alpha(h) * v`` added to the FFN output,
``alpha`` a linear map of the activated FFN hidden ``h`` (fc2's input)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.injector import Injector
from effspeech.method import AdapterMethod, MethodConfig
from effspeech.registry import register_adapter


class TokenShift(nn.Module):
    """``alpha`` starts at zero (the identity at attach); ``v`` starts small and random so both learn."""

    def __init__(self, dim: int, ffn_dim: int) -> None:
        super().__init__()
        self.v = nn.Parameter(torch.randn(dim) * 0.02)
        self.alpha = nn.Linear(ffn_dim, 1)
        nn.init.zeros_(self.alpha.weight)
        nn.init.zeros_(self.alpha.bias)

    def forward(self, ffn_hidden, ffn_output):
        return ffn_output + self.alpha(ffn_hidden) * self.v


@dataclass
class AdapterBiasConfig(MethodConfig):
    layers: list[int] | None = None


@register_adapter("adapterbias")
class AdapterBias(AdapterMethod):
    Config = AdapterBiasConfig

    def attach(self, anatomy: Anatomy, injector: Injector) -> nn.Module:
        owner = nn.ModuleDict()
        for index in anatomy.layer_indices(self.config.layers):
            shift = TokenShift(anatomy.dim, anatomy.ffn_dim)
            owner[str(index)] = shift
            injector.forward_hook(anatomy.site(index, "fc2"), lambda _m, args, out, shift=shift: shift(args[0], out))
        return owner
