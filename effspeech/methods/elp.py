"""ELP adapters (Inoue et al., 2024, "ELP-Adapters: parameter efficient adapter tuning for various speech
processing tasks", arXiv 2407.21066): three kinds of adapter, each switchable.

- E-adapters, in every encoder layer on the FFN's output: ``h + LN(W_up GELU(W_down h))``.
- L-adapters, on the path from every layer to the downstream head: the same block on each layer's
  output as S3PRL collects it, so the featurizer's weighted sum reads adapted states while the next
  layer still reads the original one. S3PRL's first hidden state (the encoder's input) has none.
- P-adapter: learned frames prepended to the features the transformer encoder reads (before its
  positional convolution), removed again from the encoder output and every hidden state.

Sizes and initialisation follow the authors' E/L-adapter code (Otake et al., ICASSP 2023): bottleneck
256, GELU, a LayerNorm on the adapter's output, weights drawn from N(0, 1e-3^2) and zero biases. The
LayerNorm rescales that small initial output to unit variance, so elp is not the identity at attach.
The P-adapter's length (10 frames) is effspeech's choice; docs/adapters.md lists the other choices."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.errors import ConfigError
from effspeech.injector import CallArguments, Injector
from effspeech.method import AdapterMethod, MethodConfig, require_positive
from effspeech.methods.bottleneck import Bottleneck
from effspeech.methods.frames import strip_leading_frames
from effspeech.methods.tensors import prepend_unmasked, residual_hook
from effspeech.registry import register_adapter

INIT_STD = 1e-3
MAX_PROMPT_LENGTH = 512


class NormedBottleneck(nn.Module):
    """``LN(W_up GELU(W_down h))``: what an E- or L-adapter adds to its input."""

    def __init__(self, dim: int, bottleneck: int) -> None:
        super().__init__()
        self.mlp = Bottleneck(dim, bottleneck, nn.GELU())
        self.norm = nn.LayerNorm(dim)
        for linear in (self.mlp.down, self.mlp.up):
            nn.init.normal_(linear.weight, std=INIT_STD)
            nn.init.zeros_(linear.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(self.mlp(h))


@dataclass
class ElpConfig(MethodConfig):
    e: bool = True  # E-adapters in the encoder layers
    l: bool = True  # noqa: E741  L-adapters on the layers' paths to the head
    p: bool = True  # the P-adapter's frames
    bottleneck: int = 256  # of the E- and L-adapters
    length: int = 10  # of the P-adapter
    layers: list[int] | None = None  # layers with E- and L-adapters (None: all)

    def validate(self) -> None:
        require_positive(self, "bottleneck", "length")
        if not (self.e or self.l or self.p):
            raise ConfigError("ElpConfig: switch on at least one of e, l, p")
        if self.length > MAX_PROMPT_LENGTH:
            raise ConfigError(f"ElpConfig.length must be at most {MAX_PROMPT_LENGTH}, got {self.length}")


@register_adapter("elp")
class Elp(AdapterMethod):
    Config = ElpConfig

    def attach(self, anatomy: Anatomy, injector: Injector) -> nn.Module:
        owner = nn.Module()
        indices = anatomy.layer_indices(self.config.layers)
        if self.config.l and anatomy.expert is None:
            raise ConfigError(
                "elp's L-adapters act on the hidden states S3PRL's expert collects: attach to the expert "
                "(s3prl.hub.<family>_local(...)), not to its .model, or set l: false"
            )
        if self.config.e:
            owner.e = nn.ModuleDict({str(i): NormedBottleneck(anatomy.dim, self.config.bottleneck) for i in indices})
            for index in indices:
                injector.forward_hook(anatomy.layers[index].fc2, residual_hook(owner.e[str(index)]))
        if self.config.l:
            owner.l = nn.ModuleDict({str(i): NormedBottleneck(anatomy.dim, self.config.bottleneck) for i in indices})
            self._adapt_layer_outputs(anatomy, injector, owner.l)
        if self.config.p:
            owner.p = nn.Parameter(torch.randn(self.config.length, anatomy.dim) * 0.02)
            self._prepend_frames(anatomy, injector, owner.p)
        return owner

    @staticmethod
    def _adapt_layer_outputs(anatomy: Anatomy, injector: Injector, adapters: nn.ModuleDict) -> None:
        """S3PRL collects the input of every layer and the encoder's output: state ``i + 1`` is layer ``i``'s
        output. The adapters act on the collected states only, not on what the next layer reads."""
        postprocess = anatomy.expert.hook_postprocess

        def adapt(hiddens):
            adapted = [
                (name, h + adapters[str(i - 1)](h) if str(i - 1) in adapters else h)
                for i, (name, h) in enumerate(hiddens)
            ]
            return postprocess(adapted) if callable(postprocess) else adapted

        injector.set_attribute(anatomy.expert, "hook_postprocess", adapt)

    @staticmethod
    def _prepend_frames(anatomy: Anatomy, injector: Injector, frames: nn.Parameter) -> None:
        count = frames.size(0)

        def add_frames(_module: nn.Module, call: CallArguments) -> None:
            x = call.get("x")  # batch-major (B, T, D): the features before the positional convolution
            call.set("x", torch.cat([frames.to(x.dtype).expand(x.size(0), -1, -1), x], dim=1))
            call.set("padding_mask", prepend_unmasked(call.get("padding_mask"), count))

        injector.forward_pre_hook(anatomy.encoder, add_frames)
        strip_leading_frames(anatomy, injector, count)
