"""Learned frames in front of the transformer's sequence, and taking them out again of everything the
downstream sees (the encoder's output and every hidden state S3PRL collects), so that frame t of each
is still frame t of the input. Shared by prompt tuning (frames at the first layer's input) and elp's
P-adapter (at the encoder's input, before the positional convolution)."""

from __future__ import annotations

from typing import Any

import torch

from effspeech.anatomy import Anatomy
from effspeech.injector import Injector


def strip_time(value: Any, count: int, time_dim: int) -> Any:
    """Drop the first ``count`` frames of every 3-D tensor in a (nested) tuple/list of layer results."""
    if isinstance(value, torch.Tensor) and value.dim() == 3:
        return value.narrow(time_dim, count, value.size(time_dim) - count)
    if isinstance(value, (tuple, list)):
        return type(value)(strip_time(item, count, time_dim) for item in value)
    return value


ENCODER_OUTPUT = "self.model.encoder"  # what S3PRL's experts call the encoder's output among the hidden states


def strip_leading_frames(anatomy: Anatomy, injector: Injector, count: int) -> None:
    """Remove ``count`` leading frames from the encoder's output and from the hidden states S3PRL's expert
    collects: its hooks see the layers' inputs, which still hold them, and the encoder's output, which this
    strips in a hook of its own. Several methods that add frames compose: each removes its own count."""

    def strip_encoder_output(_module, _args, output):
        x, layer_results = output  # x batch-major, the layer results time-major
        return x[:, count:], strip_time(layer_results, count, time_dim=0)

    # prepend: run before S3PRL's own hook on the encoder, so that it collects the stripped output
    injector.forward_hook(anatomy.encoder, strip_encoder_output, prepend=True)
    if anatomy.expert is not None:

        def strip_hidden_states(hiddens):
            return [(name, h if name == ENCODER_OUTPUT else h[:, count:]) for name, h in hiddens]

        injector.chain(anatomy.expert, "hook_postprocess", strip_hidden_states)
