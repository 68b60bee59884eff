"""Hugging Face transformers checkpoints as S3PRL upstreams: ``TransformersExpert`` gives a
``save_pretrained`` directory or a hub id the interface S3PRL's featurizer reads (a list of waves in,
``hidden_states`` out: the first layer's input and every layer's output, 50 Hz), so the trainer, the
leaderboard and the benchmark run it like S3PRL's own experts.

A local directory never touches the network. Wave normalisation and the attention mask follow the
checkpoint's ``preprocessor_config.json`` (``do_normalize``, ``return_attention_mask``); without one,
what transformers' feature extractor defaults to for the model's extractor (both on for a layer-norm
extractor, off for a group-norm one). As S3PRL's experts do, the upstream runs without LayerDrop and
without SpecAugment of its own, and its CNN extractor does not train under ``-f``."""

from __future__ import annotations

import json
import math
import os
import socket
import urllib.parse
from pathlib import Path

import torch
from torch import nn

from effspeech.errors import DownloadError, MissingFileError, UnknownNameError
from effspeech.superb.records import atomic_write

MODEL_CLASSES = {  # family -> transformers class name
    "hubert": "HubertModel",
    "wav2vec2": "Wav2Vec2Model",
    "wavlm": "WavLMModel",
    "data2vec": "Data2VecAudioModel",
}
PREPROCESSOR = "preprocessor_config.json"

# Tiny random architectures for tests: the published models' strides (product 320), a second to build.
TINY = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "conv_dim": (32,) * 7,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
}
ARCHS = {  # arch -> (family, config): "_base" is the published Base models' shape (transformers' defaults)
    **{f"hf_{family}_tiny": (family, TINY) for family in MODEL_CLASSES},
    **{f"hf_{family}_base": (family, {}) for family in MODEL_CLASSES},
}


class TransformersExpert(nn.Module):
    """S3PRL's upstream interface around a transformers network (``.model``, where the anatomy finds it)."""

    def __init__(self, model: nn.Module, normalize: bool, attention_mask: bool) -> None:
        super().__init__()
        model.config.layerdrop = 0.0
        model.config.apply_spec_augment = False
        model.feature_extractor._requires_grad = False  # S3PRL's feature_grad_mult = 0: -f leaves the CNN
        self.model = model
        self.normalize = normalize
        self.attention_mask = attention_mask

    def get_downsample_rates(self, key: str = "hidden_states") -> int:
        return math.prod(self.model.config.conv_stride)

    def forward(self, wavs: list[torch.Tensor]) -> dict[str, list[torch.Tensor]]:
        lengths = [len(wav) for wav in wavs]
        if self.normalize:  # each wave over its own samples, as transformers' feature extractor does
            wavs = [(wav - wav.mean()) / torch.sqrt(wav.var(unbiased=False) + 1e-7) for wav in wavs]
        batch = nn.utils.rnn.pad_sequence(list(wavs), batch_first=True)
        mask = None
        if self.attention_mask:
            mask = (
                torch.arange(batch.size(1), device=batch.device)[None]
                < torch.tensor(lengths, device=batch.device)[:, None]
            )
        output = self.model(batch, attention_mask=None if mask is None else mask.long(), output_hidden_states=True)
        states = list(output.hidden_states)
        return {"hidden_states": states, "last_hidden_state": output.last_hidden_state, "default": states[-1]}


def load_transformers(family: str, ckpt: str) -> TransformersExpert:
    """The expert for a ``save_pretrained`` directory, or a hub id (downloaded and cached by transformers)."""
    import transformers

    model_class = getattr(transformers, MODEL_CLASSES[family])
    local = os.path.isdir(ckpt)
    if not local and (os.path.exists(ckpt) or ckpt.startswith((".", "/", "~")) or ckpt.count("/") > 1):
        raise MissingFileError(f"not a transformers save_pretrained directory or hub id: {ckpt}")
    cached = local or _is_cached(model_class, ckpt)
    if not cached and not _hub_reachable():
        raise DownloadError(
            f"cannot download the transformers checkpoint {ckpt!r}: the Hugging Face hub is not reachable and it "
            "is not in the cache; without network access pass a local save_pretrained directory with -k DIR"
        )
    try:
        model = model_class.from_pretrained(ckpt, local_files_only=cached)
        preprocessor = _preprocessor(ckpt, local, cached)
    except OSError as error:
        what = "save_pretrained directory" if local else "hub id"
        raise MissingFileError(f"{ckpt} is not a {MODEL_CLASSES[family]} {what}: {error}") from error
    layer_norm = _layer_norm_extractor(model.config)
    return TransformersExpert(
        model.eval(),
        normalize=preprocessor.get("do_normalize", layer_norm),
        attention_mask=preprocessor.get("return_attention_mask", layer_norm),
    )


def _is_cached(model_class, hub_id: str) -> bool:
    try:
        model_class.config_class.from_pretrained(hub_id, local_files_only=True)
    except OSError:
        return False
    return True


def _hub_reachable(timeout: float = 5.0) -> bool:
    """One connection attempt to the hub's host, instead of transformers' minute of retries offline."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        return False
    host = urllib.parse.urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _layer_norm_extractor(config) -> bool:
    return getattr(config, "feat_extract_norm", "layer") == "layer"  # data2vec's extractor has only layer norms


def _preprocessor(ckpt: str, local: bool, cached: bool) -> dict:
    if local:
        path = Path(ckpt, PREPROCESSOR)
        return json.loads(path.read_text()) if path.is_file() else {}
    from huggingface_hub import hf_hub_download

    try:
        return json.loads(Path(hf_hub_download(ckpt, PREPROCESSOR, local_files_only=cached)).read_text())
    except OSError:  # the repository has none (not found, or not cached)
        return {}


def make_transformers_checkpoint(arch: str, seed: int, out: str | Path) -> Path:
    """Write a random ``hf_<family>_{tiny,base}`` model with ``save_pretrained`` into the directory ``out``."""
    if arch not in ARCHS:
        raise UnknownNameError(f"unknown arch {arch!r}; valid: {', '.join(ARCHS)}")
    import transformers

    family, config = ARCHS[arch]
    model_class = getattr(transformers, MODEL_CLASSES[family])
    torch.manual_seed(seed)
    model = model_class(model_class.config_class(**config))
    out = Path(out)
    model.save_pretrained(out)
    layer_norm = _layer_norm_extractor(model.config)
    preprocessor = {"do_normalize": layer_norm, "return_attention_mask": layer_norm, "sampling_rate": 16000}
    atomic_write(out / PREPROCESSOR, json.dumps(preprocessor, indent=2).encode())
    return out
