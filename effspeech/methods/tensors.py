"""Tensor edits that several methods share: applying a function to a module's main output, and the
sequential-adapter hook built on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def map_first(output: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply ``fn`` to a module's main output, whether it returns a tensor or a tuple."""
    if isinstance(output, tuple):
        return (fn(output[0]), *output[1:])
    return fn(output)


def residual_hook(adapter: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
    """A forward hook that adds ``adapter(h)`` to a sublayer's main output ``h``: a sequential adapter."""
    return lambda _module, _args, output: map_first(output, lambda h: h + adapter(h))
