"""ELP adapters (Inoue et al., 2024, "ELP-Adapters: parameter efficient adapter tuning for various speech
processing tasks", arXiv 2407.21066): three kinds of adapter, each switchable.

- E-adapters, in every encoder layer on the FFN's output: ``h + LN(W_up ReLU(W_down h))``, bottleneck 256.
- L-adapters, on the path from every layer to the downstream head: ``LN(ReLU(W h))``, 512 wide, on each
  layer's output as S3PRL collects it. The head then reads the weighted sum of these (S3PRL's
  featurizer does the sum) instead of the hidden states; the next layer still reads the original one,
  and S3PRL's first hidden state (the encoder's input) has no path.
- P-adapter: learned frames prepended to the features the transformer encoder reads (before its
  positional convolution), removed again from the encoder output and every hidden state.

Sizes, activation and initialisation follow the authors' code for their E/L adapters (Otake et al.,
ICASSP 2023: sinhat98/adapter-wavlm, its training scripts' defaults): weights drawn from N(0, 1e-3^2),
zero biases. The P-adapter's length (10 frames) is effspeech's choice; docs/adapters.md lists the others."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.errors import ConfigError
from effspeech.injector import Injector
from effspeech.method import AdapterMethod, MethodConfig, require_positive
from effspeech.methods.bottleneck import Bottleneck
from effspeech.methods.tensors import residual_hook
from effspeech.registry import register_adapter

INIT_STD = 1e-3
MAX_PROMPT_LENGTH = 512


def _init(*linears: nn.Linear) -> None:
    for linear in linears:
        nn.init.normal_(linear.weight, std=INIT_STD)
        nn.init.zeros_(linear.bias)


class EncoderAdapter(nn.Module):
    """``LN(W_up ReLU(W_down h))``: what an E-adapter adds to the FFN's output."""

    def __init__(self, dim: int, bottleneck: int) -> None:
        super().__init__()
        self.mlp = Bottleneck(dim, bottleneck, nn.ReLU())
        self.norm = nn.LayerNorm(dim)
        _init(self.mlp.down, self.mlp.up)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(self.mlp(h))


class LayerPath(nn.Module):
    """``LN(ReLU(W h))``: an L-adapter, what the head reads of one layer."""

    def __init__(self, dim: int, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, width)
        self.norm = nn.LayerNorm(width)
        _init(self.linear)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.relu(self.linear(h)))


@dataclass
class ElpConfig(MethodConfig):
    e: bool = True  # E-adapters in the encoder layers
    l: bool = True  # noqa: E741  L-adapters on the layers' paths to the head
    p: bool = True  # the P-adapter's frames
    bottleneck: int = 256  # of the E-adapters
    width: int = 512  # of the L-adapters' outputs, what the head reads
    length: int = 10  # of the P-adapter
    layers: list[int] | None = None  # layers with E- and L-adapters (None: all)

    def validate(self) -> None:
        require_positive(self, "bottleneck", "width", "length")
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
        if self.config.e:
            owner.e = nn.ModuleDict({str(i): EncoderAdapter(anatomy.dim, self.config.bottleneck) for i in indices})
            for index in indices:
                injector.forward_hook(anatomy.site(index, "fc2"), residual_hook(owner.e[str(index)]))
        if self.config.l:
            paths = owner.l = nn.ModuleDict({str(i): LayerPath(anatomy.dim, self.config.width) for i in indices})
            # state i + 1 is layer i's output; the first state (the first layer's input) has no path
            try:
                anatomy.read_hidden_states(injector, lambda i, h: paths[str(i - 1)](h) if str(i - 1) in paths else None)
            except ConfigError as error:
                raise ConfigError(f"elp's L-adapters act on the hidden states the downstream sees: {error}; "
                                  "or set l: false") from error  # fmt: skip
        if self.config.p:
            owner.p = nn.Parameter(torch.randn(self.config.length, anatomy.dim) * 0.02)
            anatomy.prepend_frames(injector, owner.p, at="encoder")
        return owner
