"""Where things are inside an upstream, found once for every method, by role: the layers, the attention
and FFN projections, the layer norms, the extractor's convs, and the few sequence edits (frames in front
of the sequence, extra keys and values for attention). Each naming scheme answers them in a module of
its own (``anatomy_fairseq``: S3PRL's models; ``anatomy_transformers``: Hugging Face's), so that a method
never spells an attribute path."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from effspeech.errors import ConfigError, UnsupportedModelError
from effspeech.injector import Injector

# The linear projections a method may target: attention query, key, value and output; FFN in and out.
LINEAR_ROLES = ("q", "k", "v", "out", "fc1", "fc2")
# Module roles inside one transformer layer: the linears, the attention block and the two layer norms.
LAYER_ROLES = (*LINEAR_ROLES, "attention", "attention_norm", "ffn_norm")


@dataclass
class Anatomy(ABC):
    """The parts of one upstream that adapters attach to. Subclasses name the sites of their scheme."""

    root: nn.Module  # what the user passed: an S3PRL UpstreamExpert, or the network itself
    network: nn.Module  # HubertModel, Wav2Vec2Model, WavLM(Model), Data2VecAudioModel
    expert: nn.Module | None  # the S3PRL UpstreamExpert that collects hidden states, if any
    family: str
    parameters: dict[str, nn.Parameter]  # the network's own, named before anything was attached

    scheme: ClassVar[str]  # "fairseq" or "transformers"
    sites: ClassVar[dict[str, str]]  # layer role -> attribute path under one transformer layer
    conv_path: ClassVar[str]  # the Conv1d inside one block of the feature extractor
    bias_scopes: ClassVar[tuple[str, ...]]  # parameter-name prefixes of the part run with gradients
    extractor_scope: ClassVar[str] = "feature_extractor."
    layer_marks: ClassVar[tuple[str, ...]]  # attributes every transformer layer of the scheme has

    @classmethod
    def is_network(cls, module: nn.Module) -> bool:
        """Whether ``module`` is an SSL network named in this scheme."""
        layers = getattr(getattr(module, "encoder", None), "layers", None)
        return (
            hasattr(module, "feature_extractor")
            and isinstance(layers, nn.ModuleList)
            and len(layers) > 0
            and all(hasattr(layer, mark) for layer in layers for mark in cls.layer_marks)
        )

    @property
    def encoder(self) -> nn.Module:
        return self.network.encoder

    @property
    def layers(self) -> list[nn.Module]:
        return list(self.network.encoder.layers)

    @property
    def convs(self) -> list[nn.Conv1d]:
        """The extractor's convolutions, one per block, bottom first."""
        return [getattr(block, self.conv_path) for block in self.network.feature_extractor.conv_layers]

    @property
    def dim(self) -> int:
        return self.site(0, "fc2").out_features

    @property
    def ffn_dim(self) -> int:
        return self.site(0, "fc2").in_features

    def site(self, layer_index: int, role: str) -> nn.Module:
        """The module playing ``role`` (one of ``LAYER_ROLES``) in layer ``layer_index``."""
        module = self.layers[layer_index]
        for part in self.sites[role].split("."):
            module = getattr(module, part)
        return module

    def target(self, layer_index: int, role: str) -> nn.Linear:
        """A linear projection by role, checked to be one (a method parametrizes its weight)."""
        linear = self.site(layer_index, role)
        if not isinstance(linear, nn.Linear):
            raise ConfigError(f"target {role!r} of layer {layer_index} is a {type(linear).__name__}, not Linear")
        return linear

    def layer_indices(self, selected: list[int] | None) -> list[int]:
        """Validate a user's layer list (``None`` means every layer)."""
        count = len(self.layers)
        if selected is None:
            return list(range(count))
        bad = [index for index in selected if not -count <= index < count]
        if bad:
            raise ConfigError(f"layer indices {bad} out of range for an upstream with {count} layers")
        return sorted({index % count for index in selected})

    def encoder_layer_norms(self) -> list[nn.LayerNorm]:
        """The transformer's LayerNorms: the two of every layer and the encoder's own."""
        per_layer = [self.site(i, role) for i in range(len(self.layers)) for role in ("attention_norm", "ffn_norm")]
        return [*per_layer, self.encoder.layer_norm]

    def is_downstream_bias(self, name: str, include_extractor: bool) -> bool:
        """Whether parameter ``name`` is a bias of the part a downstream loss reaches (BitFit's set)."""
        scopes = self.bias_scopes + ((self.extractor_scope,) if include_extractor else ())
        return name.endswith(".bias") and name.startswith(scopes)

    def name_of(self, parameter: nn.Parameter) -> str:
        """A parameter's name in the network (what an unfrozen tensor's state-dict key is built from)."""
        for name, candidate in self.parameters.items():
            if candidate is parameter:
                return name
        raise KeyError(f"{tuple(parameter.shape)} tensor is not a parameter of the {self.family} network")

    def signature(self) -> dict:
        """What an adapter checkpoint must match: family and sizes (not the scheme: the keys are by role)."""
        return {"family": self.family, "layers": len(self.layers), "dim": self.dim, "ffn_dim": self.ffn_dim}

    # The scheme-specific parts: how gradients reach the extractor and how the sequence is edited.

    @abstractmethod
    def let_extractor_learn(self, injector: Injector) -> None:
        """Run the feature extractor with gradients (methods that train something in it)."""

    @abstractmethod
    def prepend_frames(self, injector: Injector, frames: nn.Parameter, at: str) -> None:
        """Put learned ``(n, dim)`` frames in front of the sequence, at the first layer's input (``at="layers"``)
        or at the encoder's input before its positional convolution (``at="encoder"``); extend every padding
        mask to match; take them out again of the encoder's output and every hidden state the downstream
        sees, so that frame t is still frame t of the input. Several such edits compose."""

    @abstractmethod
    def read_hidden_states(self, injector: Injector, read: Callable[[int, torch.Tensor], torch.Tensor | None]) -> None:
        """Replace the hidden states the downstream sees (state 0: the first layer's input, state ``i + 1``:
        layer ``i``'s output; batch-major) by ``read(i, state)``, dropping those it returns None for."""

    @abstractmethod
    def prefix_attention(self, injector: Injector, layer_index: int, key: nn.Parameter, value: nn.Parameter) -> None:
        """Prepend learned ``(n, dim)`` rows to the input of the key and value projections of one layer's
        attention (``K = W_k [P_k; X]``), unmasked; queries and the output keep the input's length."""


FAMILIES = ("hubert", "wavlm", "wav2vec2", "data2vec")


def _family(network: nn.Module) -> str:
    name = type(network).__name__.lower()
    return next((family for family in FAMILIES if family in name), name)


def find_anatomy(model: nn.Module) -> Anatomy:
    """Locate the SSL network in ``model`` (the network itself, or an object holding it as ``.model``, such as
    an S3PRL upstream expert) and the scheme its modules are named in."""
    from effspeech.anatomy_fairseq import FairseqAnatomy  # the schemes build on this module
    from effspeech.anatomy_transformers import TransformersAnatomy

    for network, expert in ((model, None), (getattr(model, "model", None), model)):
        for scheme in (FairseqAnatomy, TransformersAnatomy):
            if isinstance(network, nn.Module) and scheme.is_network(network):
                return scheme(model, network, expert, _family(network), dict(network.named_parameters()))
    raise UnsupportedModelError(
        f"cannot attach adapters to {type(model).__name__}: looked for an encoder with .layers (each with "
        "self_attn and fc1/fc2 as in S3PRL's fairseq models, or attention and feed_forward as in transformers) "
        "and a feature_extractor, on the model and on its .model; expected an S3PRL HuBERT/wav2vec 2.0/WavLM "
        "upstream (e.g. s3prl.hub.hubert_local(ckpt=...)), a transformers HubertModel, Wav2Vec2Model, "
        "WavLMModel or Data2VecAudioModel, or an object holding one as .model"
    )
