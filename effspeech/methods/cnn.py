"""CNN adapters in the feature extractor (after CHAPTER, Chen et al., 2023): each conv block gets a
zero-initialised parallel twin, ``conv(x) + scale * twin(x)``.

S3PRL's experts set ``feature_grad_mult = 0``, which runs the extractor under ``torch.no_grad()``;
this method sets it to 1 so the twins receive gradients (the frozen convs still get none)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.injector import Injector
from effspeech.methods.base import AdapterMethod, MethodConfig, require_positive
from effspeech.registry import register_adapter


class ParallelConv(nn.Module):
    def __init__(self, conv: nn.Conv1d, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.twin = nn.Conv1d(
            conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding, bias=False
        )
        nn.init.zeros_(self.twin.weight)

    def forward(self, x, conv_output):
        return conv_output + self.scale * self.twin(x)


@dataclass
class CnnConfig(MethodConfig):
    scale: float = 0.01
    blocks: list[int] | None = None  # conv blocks of the extractor; None: all

    def validate(self) -> None:
        require_positive(self, "scale")


@register_adapter("cnn")
class CnnAdapter(AdapterMethod):
    Config = CnnConfig

    def attach(self, anatomy: Anatomy, injector: Injector) -> nn.Module:
        blocks = anatomy.conv_blocks
        selected = range(len(blocks)) if self.config.blocks is None else self.config.blocks
        owner = nn.ModuleDict()
        for index in selected:
            if not 0 <= index < len(blocks):
                raise ValueError(f"CnnConfig.blocks: {index} out of range for {len(blocks)} conv blocks")
            conv = blocks[index][0]
            twin = ParallelConv(conv, self.config.scale)
            owner[str(index)] = twin
            injector.forward_hook(conv, lambda _m, args, out, twin=twin: twin(args[0], out))
        injector.set_attribute(anatomy.network, "feature_grad_mult", 1.0)
        return owner
