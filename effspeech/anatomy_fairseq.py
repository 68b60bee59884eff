"""S3PRL's HuBERT, wav2vec 2.0 and WavLM: fairseq's modules, time-major ``(T, B, D)`` inside the encoder.

Attention takes ``query``, ``key``, ``value`` and a ``key_padding_mask`` (True = padding) and runs
through ``F.multi_head_attention_forward``, so extra keys go in as extra key and value rows. S3PRL's
expert collects the input of every layer and the encoder's output through its own hooks; frames put in
front are taken out of both. WavLM reshapes its relative position bias as a square, so for a prefix
there the queries are padded with as many rows as the prefix, dropped after attention, and the prefix
positions get no position bias."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.errors import ConfigError
from effspeech.injector import CallArguments, Injector
from effspeech.sequence import prepend_unmasked, strip_time

ENCODER_OUTPUT = "self.model.encoder"  # what S3PRL's experts call the encoder's output among the hidden states


class FairseqAnatomy(Anatomy):
    scheme = "fairseq"
    sites = {
        "q": "self_attn.q_proj",
        "k": "self_attn.k_proj",
        "v": "self_attn.v_proj",
        "out": "self_attn.out_proj",
        "fc1": "fc1",
        "fc2": "fc2",
        "attention": "self_attn",
        "attention_norm": "self_attn_layer_norm",
        "ffn_norm": "final_layer_norm",
    }
    conv_path = "0"
    bias_scopes = ("layer_norm.", "post_extract_proj.", "encoder.")

    layer_marks = ("self_attn", "fc1", "fc2")

    def let_extractor_learn(self, injector: Injector) -> None:
        # S3PRL's experts set feature_grad_mult = 0, which runs the extractor under torch.no_grad()
        injector.set_attribute(self.network, "feature_grad_mult", 1.0)

    def prepend_frames(self, injector: Injector, frames: nn.Parameter, at: str) -> None:
        count = frames.size(0)
        if at == "layers":

            def add(_module: nn.Module, call: CallArguments) -> None:
                x = call.get("x")  # time-major
                call.set("x", torch.cat([frames.to(x.dtype).unsqueeze(1).expand(-1, x.size(1), -1), x]))

            def extend_mask(_module: nn.Module, call: CallArguments) -> None:
                call.set("self_attn_padding_mask", prepend_unmasked(call.get("self_attn_padding_mask"), count))

            injector.forward_pre_hook(self.layers[0], add)
            for layer in self.layers:
                injector.forward_pre_hook(layer, extend_mask)
        else:

            def add(_module: nn.Module, call: CallArguments) -> None:
                x = call.get("x")  # batch-major: the features before the positional convolution
                call.set("x", torch.cat([frames.to(x.dtype).expand(x.size(0), -1, -1), x], dim=1))
                call.set("padding_mask", prepend_unmasked(call.get("padding_mask"), count))

            injector.forward_pre_hook(self.encoder, add)
        self._strip_leading_frames(injector, count)

    def _strip_leading_frames(self, injector: Injector, count: int) -> None:
        """The expert's hooks see the layers' inputs, which still hold the frames, and the encoder's output,
        which a hook of this strips before the expert's runs. Each edit removes its own count."""

        def strip_encoder_output(_module, _args, output):
            x, layer_results = output  # x batch-major, the layer results time-major
            return x[:, count:], strip_time(layer_results, count, time_dim=0)

        injector.forward_hook(self.encoder, strip_encoder_output, prepend=True)
        if self.expert is not None:

            def strip_hidden_states(hiddens):
                return [(name, h if name == ENCODER_OUTPUT else h[:, count:]) for name, h in hiddens]

            injector.chain(self.expert, "hook_postprocess", strip_hidden_states)

    def read_hidden_states(self, injector: Injector, read: Callable[[int, torch.Tensor], torch.Tensor | None]) -> None:
        if self.expert is None:
            raise ConfigError(
                "the hidden states of an S3PRL network are collected by its expert: attach to the expert "
                "(s3prl.hub.<family>_local(...)), not to its .model"
            )

        def edit(hiddens):
            read_out = [(name, read(i, h)) for i, (name, h) in enumerate(hiddens)]
            return [(name, h) for name, h in read_out if h is not None]

        injector.chain(self.expert, "hook_postprocess", edit)

    def prefix_attention(self, injector: Injector, layer_index: int, key: nn.Parameter, value: nn.Parameter) -> None:
        count = key.size(0)
        attention = self.site(layer_index, "attention")
        square = hasattr(attention, "compute_bias")  # WavLM

        def extend_keys(module: nn.Module, call: CallArguments) -> None:
            query = call.get("query")
            call.set("key", _prepend_time_major(key, call.get("key")))
            call.set("value", _prepend_time_major(value, call.get("value")))
            call.set("key_padding_mask", prepend_unmasked(call.get("key_padding_mask"), count))
            if square:
                _pad_position_bias(module, call, query.size(0), count)
                call.set("query", torch.cat([query.new_zeros(count, *query.shape[1:]), query], dim=0))

        injector.forward_pre_hook(attention, extend_keys)
        if square:
            injector.forward_hook(attention, lambda _m, _a, out: _drop_padded_queries(out, count))


def _prepend_time_major(rows: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([rows.to(x.dtype).unsqueeze(1).expand(-1, x.size(1), -1), x], dim=0)


def _pad_position_bias(attention: nn.Module, call: CallArguments, query_length: int, count: int) -> None:
    """Give WavLM a square bias for ``count`` extra leading positions, zero wherever a prefix is involved."""
    bias = call.get("position_bias")
    batch = call.get("query").size(1)
    if bias is None:
        if not attention.has_relative_attention_bias:
            return
        bias = attention.compute_bias(query_length, query_length)
        bias = bias.unsqueeze(0).expand(batch, -1, -1, -1).reshape(-1, query_length, query_length)
    call.set("position_bias", nn.functional.pad(bias, (count, 0, count, 0)))


def _drop_padded_queries(output: tuple, count: int) -> tuple[Any, ...]:
    attended, weights, bias = output
    return attended[count:], weights, None if bias is None else bias[:, count:, count:]
