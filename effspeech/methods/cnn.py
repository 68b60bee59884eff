"""CNN adapters in the feature extractor (after CHAPTER, Chen et al., 2023): each conv block gets a
zero-initialised parallel twin, ``conv(x) + scale * twin(x)``.

S3PRL's experts run the extractor under ``torch.no_grad()`` (``feature_grad_mult = 0``); this method
turns its gradients on so the twins receive them (the frozen convs still get none). The twin has
the conv's kernel, stride and padding and no bias, so ``merge()`` folds it into the conv's weight."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.errors import ConfigError
from effspeech.injector import Injector
from effspeech.method import AdapterMethod, MethodConfig, require_positive
from effspeech.registry import register_adapter


class ParallelConv(nn.Module):
    def __init__(self, conv: nn.Conv1d, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.twin = nn.Conv1d(
            conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding, bias=False
        )
        nn.init.zeros_(self.twin.weight)
        self.merged = False

    def forward(self, x, conv_output):
        return conv_output if self.merged else conv_output + self.scale * self.twin(x)


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
        convs = anatomy.convs
        selected = range(len(convs)) if self.config.blocks is None else self.config.blocks
        owner = nn.ModuleDict()
        self._sites: list[tuple[nn.Conv1d, ParallelConv]] = []
        self._originals: list[torch.Tensor] = []
        for index in selected:
            if not 0 <= index < len(convs):
                raise ConfigError(f"CnnConfig.blocks: {index} out of range for {len(convs)} conv blocks")
            conv = convs[index]
            twin = ParallelConv(conv, self.config.scale)
            owner[str(index)] = twin
            self._sites.append((conv, twin))
            injector.forward_hook(conv, lambda _m, args, out, twin=twin: twin(args[0], out))
        anatomy.let_extractor_learn(injector)
        injector.on_detach(self.unmerge)
        return owner

    @property
    def merged(self) -> bool:
        return bool(self._originals)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold each twin into its conv (``W + scale * W_twin``): inference then costs the bare extractor."""
        if self._originals:
            return
        for conv, twin in self._sites:
            self._originals.append(conv.weight.detach().clone())
            conv.weight.add_(twin.scale * twin.twin.weight)
            twin.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore the exact conv weights and the parallel twins."""
        for (conv, twin), original in zip(self._sites, self._originals):
            conv.weight.copy_(original)
            twin.merged = False
        self._originals = []
