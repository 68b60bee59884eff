"""Parallel adapter (He et al., ICLR 2022, "Towards a unified view of parameter-efficient transfer
learning"): a bottleneck that reads the FFN's input and adds to the FFN's output, ``FFN(x) + s *
W_up ReLU(W_down x)``, beside the FFN rather than after it (Houlsby's place). Defaults: bottleneck 32,
the paper's scale ``s = 4`` for this placement, ReLU, ``W_up`` zero-initialised (the identity at attach)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.injector import Injector
from effspeech.method import AdapterMethod, MethodConfig, require_positive
from effspeech.methods.bottleneck import Bottleneck
from effspeech.methods.tensors import map_first
from effspeech.registry import register_adapter


@dataclass
class ParallelConfig(MethodConfig):
    bottleneck: int = 32
    scale: float = 4.0
    layers: list[int] | None = None

    def validate(self) -> None:
        require_positive(self, "bottleneck", "scale")


@register_adapter("parallel")
class Parallel(AdapterMethod):
    Config = ParallelConfig

    def attach(self, anatomy: Anatomy, injector: Injector) -> nn.Module:
        owner = nn.ModuleDict()
        for index in anatomy.layer_indices(self.config.layers):
            adapter = owner[str(index)] = Bottleneck(anatomy.dim, self.config.bottleneck, nn.ReLU())
            pending: list[torch.Tensor] = []  # fc1 sees the FFN's input; fc2's output takes the adapter's

            def read_input(_module, args, _output, adapter=adapter, pending=pending) -> None:
                pending.append(adapter(args[0]))

            def add_output(_module, _args, output, pending=pending, index=index):
                if not pending:
                    raise RuntimeError(f"parallel adapter of layer {index}: fc2 ran without fc1 before it")
                return map_first(output, lambda h: h + self.config.scale * pending.pop())

            injector.forward_hook(anatomy.site(index, "fc1"), read_input)
            injector.forward_hook(anatomy.site(index, "fc2"), add_output)
        return owner
