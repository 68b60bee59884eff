"""The GPU training path: autocast precision (``--precision``) and ``torch.compile`` (``--compile``).

Weights, optimizer state and the loss stay fp32; autocast runs the matmuls and convolutions of the
forward in bf16 or fp16. fp16 needs a gradient scaler (its range is too small for small gradients): a
step whose scaled gradient overflows is skipped by the scaler, which lowers the scale, and is not
counted as a non-finite step. ``--compile`` compiles the upstream's transformer encoder, with the
adapters' hooks and parametrizations in it, for dynamic shapes; the frozen extractor below it stays
eager (and may be cached). What dynamo cannot trace runs eagerly, with a warning."""

from __future__ import annotations

import contextlib
import logging
import warnings

import torch
from torch import nn

from effspeech.anatomy import find_anatomy
from effspeech.errors import ConfigError, UnsupportedModelError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """The forward's autocast context (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in DTYPES:
        raise ConfigError(f"--precision {precision!r}: expected fp32, bf16 or fp16")
    return torch.autocast(torch.device(device).type, dtype=DTYPES[precision])


def grad_scaler(device: str, precision: str) -> torch.amp.GradScaler | None:
    return torch.amp.GradScaler(torch.device(device).type) if precision == "fp16" else None


def compile_upstream(upstream: nn.Module, log: logging.Logger) -> str:
    """Compile the transformer encoder in place (module and parameter names are unchanged, so checkpoints
    and hooks are too); returns what was compiled, for the log."""
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True  # a graph dynamo cannot build runs eagerly
    try:
        target, name = find_anatomy(upstream).encoder, "the transformer encoder"
    except UnsupportedModelError:  # another upstream: the whole of it
        target, name = upstream, "the whole upstream"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target.compile(dynamic=True)
    log.info("torch.compile: %s (dynamic shapes)", name)
    return name
