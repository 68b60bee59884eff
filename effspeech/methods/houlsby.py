"""Houlsby et al. (2019) bottleneck adapters: ``h + W_up GELU(W_down h)`` after a sublayer's output, ``W_up``
zero-initialised, so the adapter starts as the identity."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.errors import ConfigError
from effspeech.injector import Injector
from effspeech.method import AdapterMethod, MethodConfig, require_positive
from effspeech.methods.bottleneck import Bottleneck
from effspeech.methods.tensors import residual_hook
from effspeech.registry import register_adapter

PLACEMENTS = {"ffn": ("ffn",), "attn": ("attn",), "both": ("attn", "ffn")}


@dataclass
class HoulsbyConfig(MethodConfig):
    bottleneck: int = 32
    placement: str = "ffn"  # ffn: on fc2's output; attn: on the attention output; both
    layers: list[int] | None = None

    def validate(self) -> None:
        require_positive(self, "bottleneck")
        if self.placement not in PLACEMENTS:
            raise ConfigError(f"HoulsbyConfig.placement must be one of {sorted(PLACEMENTS)}, got {self.placement!r}")


@register_adapter("houlsby")
class Houlsby(AdapterMethod):
    Config = HoulsbyConfig

    def attach(self, anatomy: Anatomy, injector: Injector) -> nn.Module:
        owner = nn.ModuleDict()
        for place in PLACEMENTS[self.config.placement]:
            adapters = nn.ModuleDict()
            for index in anatomy.layer_indices(self.config.layers):
                adapter = adapters[str(index)] = Bottleneck(anatomy.dim, self.config.bottleneck, nn.GELU())
                site = anatomy.site(index, "fc2" if place == "ffn" else "attention")
                injector.forward_hook(site, residual_hook(adapter))
            owner[place] = adapters
        return owner
