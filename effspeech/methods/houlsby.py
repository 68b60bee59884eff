"""Houlsby et al. (2019) bottleneck adapters: ``h + W_up GELU(W_down h)`` after a sublayer's output."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.errors import ConfigError
from effspeech.injector import Injector
from effspeech.method import AdapterMethod, MethodConfig, require_positive
from effspeech.methods.tensors import map_first
from effspeech.registry import register_adapter

PLACEMENTS = {"ffn": ("ffn",), "attn": ("attn",), "both": ("attn", "ffn")}


class Bottleneck(nn.Module):
    """Residual bottleneck MLP; the up projection starts at zero so the adapter starts as the identity."""

    def __init__(self, dim: int, bottleneck: int) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.activation = nn.GELU()
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h):
        return h + self.up(self.activation(self.down(h)))


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
                adapter = Bottleneck(anatomy.dim, self.config.bottleneck)
                adapters[str(index)] = adapter
                layer = anatomy.layers[index]
                site = layer.fc2 if place == "ffn" else layer.self_attn
                injector.forward_hook(site, lambda _m, _a, out, adapter=adapter: map_first(out, adapter))
            owner[place] = adapters
        return owner
