"""Deep prefix tuning (Li & Liang, 2021): learned keys and values prepended in every attention layer.

The learned vectors live at the input of the frozen key/value projections, so attention computes
``K = W_k [P_k; X]``: with ``W_k`` full rank this reaches the same keys as learning them after the
projection, and it works through S3PRL's fused ``F.multi_head_attention_forward`` unchanged. How the rows
reach each scheme's attention (and WavLM's square position bias) is the anatomy's part."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.errors import ConfigError
from effspeech.injector import Injector
from effspeech.method import AdapterMethod, MethodConfig, require_positive
from effspeech.registry import register_adapter

MAX_PREFIX_LENGTH = 512


class Prefix(nn.Module):
    def __init__(self, length: int, dim: int) -> None:
        super().__init__()
        self.key = nn.Parameter(torch.randn(length, dim) * 0.02)
        self.value = nn.Parameter(torch.randn(length, dim) * 0.02)


@dataclass
class PrefixConfig(MethodConfig):
    length: int = 10
    layers: list[int] | None = None

    def validate(self) -> None:
        require_positive(self, "length")
        if self.length > MAX_PREFIX_LENGTH:
            raise ConfigError(f"PrefixConfig.length must be at most {MAX_PREFIX_LENGTH}, got {self.length}")


@register_adapter("prefix")
class PrefixTuning(AdapterMethod):
    Config = PrefixConfig

    def attach(self, anatomy: Anatomy, injector: Injector) -> nn.Module:
        owner = nn.ModuleDict()
        for index in anatomy.layer_indices(self.config.layers):
            prefix = owner[str(index)] = Prefix(self.config.length, anatomy.dim)
            anatomy.prefix_attention(injector, index, prefix.key, prefix.value)
        return owner
