"""LayerNorm tuning: train the weight and bias of every LayerNorm of the transformer encoder (the two of
each layer and the encoder's own), a method in the spirit of BitFit whose tensors sit where the
residual stream is renormalised (Zhao et al., 2023, "Tuning LayerNorm in attention")."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.injector import Injector
from effspeech.method import AdapterMethod, MethodConfig
from effspeech.registry import register_adapter


@dataclass
class LnFitConfig(MethodConfig):
    pass


@register_adapter("lnfit")
class LnFit(AdapterMethod):
    Config = LnFitConfig

    def attach(self, anatomy: Anatomy, injector: Injector) -> nn.Module:
        for norm in anatomy.encoder_layer_norms():
            for parameter in (norm.weight, norm.bias):
                injector.unfreeze(anatomy.name_of(parameter), parameter)
        return nn.Module()
