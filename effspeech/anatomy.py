"""Where things are inside an S3PRL upstream (HuBERT, wav2vec 2.0, WavLM), found once for every method."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from effspeech.errors import ConfigError, UnsupportedModelError

# Projection names a method may target, and the attribute path under one transformer layer.
TARGETS = {
    "q": "self_attn.q_proj",
    "k": "self_attn.k_proj",
    "v": "self_attn.v_proj",
    "out": "self_attn.out_proj",
    "fc1": "fc1",
    "fc2": "fc2",
}


@dataclass
class Anatomy:
    """The parts of one upstream that adapters attach to."""

    root: nn.Module  # what the user passed: S3PRL's UpstreamExpert or the network itself
    network: nn.Module  # HubertModel, Wav2Vec2Model or WavLM
    expert: nn.Module | None  # the S3PRL UpstreamExpert that collects hidden states, if any
    family: str
    parameters: dict[str, nn.Parameter]  # the network's own, named before anything was attached

    @property
    def encoder(self) -> nn.Module:
        return self.network.encoder

    @property
    def layers(self) -> list[nn.Module]:
        return list(self.network.encoder.layers)

    @property
    def conv_blocks(self) -> list[nn.Module]:
        return list(self.network.feature_extractor.conv_layers)

    @property
    def dim(self) -> int:
        return self.layers[0].fc2.out_features

    @property
    def ffn_dim(self) -> int:
        return self.layers[0].fc2.in_features

    @property
    def square_attention(self) -> bool:
        """WavLM's gated relative position bias needs as many queries as keys."""
        return hasattr(self.layers[0].self_attn, "compute_bias")

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
        per_layer = [norm for layer in self.layers for norm in (layer.self_attn_layer_norm, layer.final_layer_norm)]
        return [*per_layer, self.encoder.layer_norm]

    def name_of(self, parameter: nn.Parameter) -> str:
        """A parameter's name in the network (what an unfrozen tensor's state-dict key is built from)."""
        for name, candidate in self.parameters.items():
            if candidate is parameter:
                return name
        raise KeyError(f"{tuple(parameter.shape)} tensor is not a parameter of the {self.family} network")

    def target(self, layer_index: int, name: str) -> nn.Module:
        module = self.layers[layer_index]
        for part in TARGETS[name].split("."):
            module = getattr(module, part)
        return module

    def signature(self) -> dict:
        """What an adapter checkpoint must match: family and sizes."""
        return {"family": self.family, "layers": len(self.layers), "dim": self.dim, "ffn_dim": self.ffn_dim}


def _is_network(module: nn.Module) -> bool:
    encoder = getattr(module, "encoder", None)
    return hasattr(module, "feature_extractor") and isinstance(getattr(encoder, "layers", None), nn.ModuleList)


def _family(network: nn.Module) -> str:
    name = type(network).__name__.lower()
    for family in ("hubert", "wavlm", "wav2vec2"):
        if family in name:
            return family
    return name


def find_anatomy(model: nn.Module) -> Anatomy:
    """Locate the SSL network in an S3PRL upstream, or accept the network itself."""
    if _is_network(model):
        network, expert = model, None
    elif isinstance(getattr(model, "model", None), nn.Module) and _is_network(model.model):
        network, expert = model.model, model
    else:
        raise UnsupportedModelError(
            f"cannot attach adapters to {type(model).__name__}: expected an S3PRL HuBERT/wav2vec 2.0/WavLM upstream "
            "(e.g. s3prl.hub.hubert_local(ckpt=...)) or its .model network"
        )
    return Anatomy(model, network, expert, _family(network), dict(network.named_parameters()))
