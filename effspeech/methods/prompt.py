"""Shallow prompt tuning (Lester et al., 2021): learned frames prepended to the transformer's input.

The prompt enters before the first transformer layer (after the convolutional position embedding, so
real frames keep their positions) and is carried through every layer. It is removed from the
encoder's output and from every hidden state S3PRL collects, frame-aligned with the input, so
downstream models see exactly the input's length."""

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

MAX_PROMPT_LENGTH = 512


@dataclass
class PromptConfig(MethodConfig):
    length: int = 10

    def validate(self) -> None:
        require_positive(self, "length")
        if self.length > MAX_PROMPT_LENGTH:
            raise ConfigError(f"PromptConfig.length must be at most {MAX_PROMPT_LENGTH}, got {self.length}")


class Prompt(nn.Module):
    def __init__(self, length: int, dim: int) -> None:
        super().__init__()
        self.frames = nn.Parameter(torch.randn(length, dim) * 0.02)


def _strip_time(value, count: int, time_dim: int):
    """Drop the prompt frames from every 3-D tensor in a (nested) tuple/list of layer results."""
    if isinstance(value, torch.Tensor) and value.dim() == 3:
        return value.narrow(time_dim, count, value.size(time_dim) - count)
    if isinstance(value, (tuple, list)):
        return type(value)(_strip_time(item, count, time_dim) for item in value)
    return value


@register_adapter("prompt")
class PromptTuning(AdapterMethod):
    Config = PromptConfig

    def attach(self, anatomy: Anatomy, injector: Injector) -> nn.Module:
        count = self.config.length
        prompt = Prompt(count, anatomy.dim)
        stripped_outputs: list[torch.Tensor] = []  # the encoder output already without the prompt

        def add_prompt(_module: nn.Module, call: CallArguments) -> None:
            call.set("x", prepend_rows(prompt.frames, call.get("x")))

        def extend_mask(_module: nn.Module, call: CallArguments) -> None:
            call.set("self_attn_padding_mask", prepend_unmasked(call.get("self_attn_padding_mask"), count))

        def strip_encoder_output(_module, _args, output):
            x, layer_results = output
            stripped_outputs[:] = [x[:, count:]]  # batch-major
            return stripped_outputs[0], _strip_time(layer_results, count, time_dim=0)

        injector.forward_pre_hook(anatomy.layers[0], add_prompt)
        for layer in anatomy.layers:
            injector.forward_pre_hook(layer, extend_mask)
        # prepend: run before S3PRL's own hook on the encoder, so that it collects the stripped output
        injector.forward_hook(anatomy.encoder, strip_encoder_output, prepend=True)

        if anatomy.expert is not None:
            postprocess = anatomy.expert.hook_postprocess

            def strip_hidden_states(hiddens):
                hiddens = [(name, h if any(h is s for s in stripped_outputs) else h[:, count:]) for name, h in hiddens]
                return postprocess(hiddens) if callable(postprocess) else hiddens

            injector.set_attribute(anatomy.expert, "hook_postprocess", strip_hidden_states)
        return prompt
