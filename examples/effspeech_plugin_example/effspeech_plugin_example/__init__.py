"""An adapter method in a separate package, found by effspeech through its entry point.

``ffn_scale`` learns one scale per channel on the FFN output of chosen layers (a LayerScale-style
adapter), starting at 1 so the upstream is unchanged at attach."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from effspeech import AdapterMethod, MethodConfig
from effspeech.anatomy import Anatomy
from effspeech.injector import Injector


@dataclass
class FfnScaleConfig(MethodConfig):
    layers: list[int] | None = None


class FfnScale(AdapterMethod):
    Config = FfnScaleConfig

    def attach(self, anatomy: Anatomy, injector: Injector) -> nn.Module:
        scales = nn.ParameterDict()
        for index in anatomy.layer_indices(self.config.layers):
            scale = scales[str(index)] = nn.Parameter(torch.ones(anatomy.dim))
            injector.forward_hook(anatomy.site(index, "fc2"), lambda _m, _a, out, scale=scale: out * scale)
        holder = nn.Module()
        holder.scales = scales
        return holder
