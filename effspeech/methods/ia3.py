"""(IA)^3 (Liu et al., NeurIPS 2022): learned vectors that rescale the attention's keys and values and the
FFN's inner activation, ``k = l_k * (W_k x + b_k)``, ``v = l_v * (W_v x + b_v)``, ``FFN(x) = W_2 (l_ff *
act(W_1 x)) + b_2``, every vector starting at 1.

S3PRL's fused attention reads ``k_proj.weight`` and ``.bias`` directly, so the scaling is a
parametrization of those tensors (the rows of the weight and the bias by ``l_k``); ``l_ff`` scales the
columns of ``fc2``'s weight, which is the same as scaling its input. ``merge()`` folds all three in."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.injector import Injector
from effspeech.method import AdapterMethod, MethodConfig
from effspeech.methods.folding import Foldable, FoldedTensors
from effspeech.registry import register_adapter


class Rescale(nn.Module):
    """The parametrization ``t -> t * vector``, the vector laid along dimension ``dim`` of ``t``."""

    def __init__(self, vector: nn.Parameter, dim: int) -> None:
        super().__init__()
        self.vector = vector
        self.dim = dim

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        shape = [1] * tensor.dim()
        shape[self.dim] = -1
        return tensor * self.vector.to(tensor.dtype).view(shape)


class Vectors(nn.Module):
    """One layer's ``l_k``, ``l_v`` and ``l_ff``."""

    def __init__(self, dim: int, ffn_dim: int) -> None:
        super().__init__()
        self.key = nn.Parameter(torch.ones(dim))
        self.value = nn.Parameter(torch.ones(dim))
        self.ffn = nn.Parameter(torch.ones(ffn_dim))


@dataclass
class Ia3Config(MethodConfig):
    layers: list[int] | None = None


@register_adapter("ia3")
class Ia3(Foldable, AdapterMethod):
    Config = Ia3Config

    def attach(self, anatomy: Anatomy, injector: Injector) -> nn.Module:
        self.folded = FoldedTensors()
        owner = nn.ModuleDict()
        for index in anatomy.layer_indices(self.config.layers):
            vectors = owner[str(index)] = Vectors(anatomy.dim, anatomy.ffn_dim)
            for projection, vector in (("k", vectors.key), ("v", vectors.value)):
                linear = anatomy.target(index, projection)
                self.folded.parametrize(injector, linear, "weight", Rescale(vector, dim=0))
                if linear.bias is not None:
                    self.folded.parametrize(injector, linear, "bias", Rescale(vector, dim=0))
            self.folded.parametrize(injector, anatomy.target(index, "fc2"), "weight", Rescale(vectors.ffn, dim=1))
        return owner
