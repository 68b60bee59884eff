"""Hugging Face transformers' HubertModel, Wav2Vec2Model, WavLMModel and Data2VecAudioModel: batch-major
``(B, T, D)`` throughout, the hidden states returned by the encoder (``output_hidden_states``).

Attention takes ``hidden_states`` and an ``attention_mask`` (4-D additive, or 2-D with 1 = keep, by
implementation and family). HuBERT, wav2vec 2.0 and data2vec call their projections as modules and take
``key_value_states``, so a prefix goes in there, the value projection's input getting rows of its own.
WavLM feeds one tensor to ``F.multi_head_attention_forward`` as queries, keys and values: a prefix with
keys and values of their own cannot reach it, and is refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.errors import UnsupportedModelError
from effspeech.injector import CallArguments, Injector
from effspeech.sequence import prepend_kept, prepend_rows


class TransformersAnatomy(Anatomy):
    scheme = "transformers"
    sites = {
        "q": "attention.q_proj",
        "k": "attention.k_proj",
        "v": "attention.v_proj",
        "out": "attention.out_proj",
        "fc1": "feed_forward.intermediate_dense",
        "fc2": "feed_forward.output_dense",
        "attention": "attention",
        "attention_norm": "layer_norm",
        "ffn_norm": "final_layer_norm",
    }
    conv_path = "conv"
    bias_scopes = ("feature_projection.", "encoder.")

    layer_marks = ("attention", "feed_forward")

    def let_extractor_learn(self, injector: Injector) -> None:
        # the flag effspeech's transformers expert clears so that -f leaves the extractor frozen, as S3PRL's
        # feature_grad_mult = 0 does (transformers runs the extractor with autograd either way)
        injector.set_attribute(self.network.feature_extractor, "_requires_grad", True)

    def prepend_frames(self, injector: Injector, frames: nn.Parameter, at: str) -> None:
        count = frames.size(0)
        if at == "layers":

            def add(_module: nn.Module, call: CallArguments) -> None:
                call.set("hidden_states", prepend_rows(frames, call.get("hidden_states")))

            def extend_mask(_module: nn.Module, call: CallArguments) -> None:
                call.set("attention_mask", prepend_kept(call.get("attention_mask"), count, queries=True))

            injector.forward_pre_hook(self.layers[0], add)
            for layer in self.layers:
                injector.forward_pre_hook(layer, extend_mask)
        else:

            def add(_module: nn.Module, call: CallArguments) -> None:
                call.set("hidden_states", prepend_rows(frames, call.get("hidden_states")))
                call.set("attention_mask", prepend_kept(call.get("attention_mask"), count, queries=False))

            injector.forward_pre_hook(self.encoder, add)
        self._strip_to_input_length(injector)

    def _strip_to_input_length(self, injector: Injector) -> None:
        """Cut every state the model returns to the extractor's frame count, keeping the last frames. By
        length, not by index: transformers 4 records the first layer's input before a layer's pre-hook
        extends it and transformers 5 after; and whatever the frames of several edits, they lead."""
        frames = [0]

        def count(_module, _args, output) -> None:
            frames[0] = output.size(-1)  # (B, C, T): no edit changes the extractor's length

        def cut(h: torch.Tensor) -> torch.Tensor:
            return h[:, h.size(1) - frames[0] :]

        injector.forward_hook(self.network.feature_extractor, count)
        # prepend: before what reads hidden states (elp's L-adapters), whatever the attach order
        injector.forward_hook(self.network, lambda _m, _a, out: _map_output(out, cut, lambda s: tuple(map(cut, s))),
                              prepend=True)  # fmt: skip

    def read_hidden_states(self, injector: Injector, read: Callable[[int, torch.Tensor], torch.Tensor | None]) -> None:
        def edit(states: tuple) -> tuple:
            read_out = (read(i, h) for i, h in enumerate(states))
            return tuple(h for h in read_out if h is not None)

        injector.forward_hook(self.network, lambda _m, _a, output: _map_output(output, lambda x: x, edit))

    def prefix_attention(self, injector: Injector, layer_index: int, key: nn.Parameter, value: nn.Parameter) -> None:
        attention = self.site(layer_index, "attention")
        if hasattr(attention, "compute_bias"):
            raise UnsupportedModelError(
                "prefix on transformers' WavLM: its attention feeds one tensor to F.multi_head_attention_forward "
                "as queries, keys and values, so no hook can give the keys and the values rows of their own; "
                "use S3PRL's WavLM (wavlm_adapter) or another method"
            )
        count = key.size(0)

        def extend_keys(_module: nn.Module, call: CallArguments) -> None:
            states = call.get("key_value_states")  # None: self-attention over hidden_states
            call.set("key_value_states", prepend_rows(key, call.get("hidden_states") if states is None else states))
            call.set("attention_mask", prepend_kept(call.get("attention_mask"), count, queries=False))

        def values_of_their_own(_module: nn.Module, call: CallArguments) -> None:
            rows = call.get("input")  # [P_k; X]: the value projection reads [P_v; X]
            call.set("input", prepend_rows(value, rows[:, count:]))

        injector.forward_pre_hook(attention, extend_keys)
        injector.forward_pre_hook(self.site(layer_index, "v"), values_of_their_own)


def _map_output(output: Any, last: Callable, states: Callable) -> Any:
    """Apply ``last`` to the model's last hidden state and ``states`` to its tuple of hidden states, in its
    ``ModelOutput`` or in the plain tuple ``return_dict=False`` gives (attentions, 4-D, are left)."""
    if hasattr(output, "last_hidden_state"):
        output.last_hidden_state = last(output.last_hidden_state)
        if output.hidden_states is not None:
            output.hidden_states = states(output.hidden_states)
        return output
    first, *rest = output
    is_states = [isinstance(item, tuple) and bool(item) and item[0].dim() == 3 for item in rest]
    return (last(first), *(states(item) if flag else item for item, flag in zip(rest, is_states)))
