"""Deep prefix tuning (Li & Liang, 2021): learned keys and values prepended in every attention layer.

The learned vectors live at the input of the frozen key/value projections, so attention computes
``K = W_k [P_k; X]``: with ``W_k`` full rank this reaches the same keys as learning them after the
projection, and it works through S3PRL's fused ``F.multi_head_attention_forward`` unchanged.
WavLM reshapes its relative position bias as a square, so there the queries are padded with as many
rows as the prefix, which are dropped after attention; the prefix positions get no position bias."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.errors import ConfigError
from effspeech.injector import CallArguments, Injector
from effspeech.method import AdapterMethod, MethodConfig, require_positive
from effspeech.methods.tensors import prepend_rows, prepend_unmasked
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


@register_adapter("prefix")
class PrefixTuning(AdapterMethod):
    Config = PrefixConfig

    def attach(self, anatomy: Anatomy, injector: Injector) -> nn.Module:
        owner = nn.ModuleDict()
        count = self.config.length
        square = anatomy.square_attention
        for index in anatomy.layer_indices(self.config.layers):
            prefix = Prefix(count, anatomy.dim)
            owner[str(index)] = prefix
            attention = anatomy.layers[index].self_attn

            def extend_keys(module: nn.Module, call: CallArguments, prefix: Prefix = prefix) -> None:
                query = call.get("query")
                call.set("key", prepend_rows(prefix.key, call.get("key")))
                call.set("value", prepend_rows(prefix.value, call.get("value")))
                call.set("key_padding_mask", prepend_unmasked(call.get("key_padding_mask"), count))
                if square:
                    _pad_position_bias(module, call, query.size(0), count)
                    call.set("query", torch.cat([query.new_zeros(count, *query.shape[1:]), query], dim=0))

            injector.forward_pre_hook(attention, extend_keys)
            if square:
                injector.forward_hook(attention, lambda _m, _a, out: _drop_padded_queries(out, count))
        return owner


def _drop_padded_queries(output: tuple, count: int) -> tuple:
    attended, weights, bias = output
    return attended[count:], weights, None if bias is None else bias[:, count:, count:]
