"""Tensor edits that several methods share: applying a function to a module's main output (and the
sequential-adapter hook built on it), and prepending learned rows to a time-major sequence and its
padding mask (prefix and prompt tuning)."""

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


def prepend_rows(rows: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Prepend learned ``(n, dim)`` rows to a time-major ``(T, B, dim)`` tensor."""
    return torch.cat([rows.to(x.dtype).unsqueeze(1).expand(-1, x.size(1), -1), x], dim=0)


def prepend_unmasked(mask: torch.Tensor | None, count: int) -> torch.Tensor | None:
    """Extend a ``(B, S)`` key padding mask by ``count`` never-padded positions in front."""
    if mask is None:
        return None
    return torch.cat([mask.new_zeros(mask.size(0), count), mask], dim=1)
