"""The bottleneck MLP that the adapter methods share (houlsby, parallel, elp): ``up(activation(down(h)))``.
``up`` starts at zero, so an adapter built on it adds nothing until it has trained."""

from __future__ import annotations

import torch
from torch import nn


class Bottleneck(nn.Module):
    def __init__(self, dim: int, bottleneck: int, activation: nn.Module) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.activation = activation
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.up(self.activation(self.down(h)))
