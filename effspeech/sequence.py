"""Edits of sequences and their masks that the anatomies share: dropping leading frames from nested layer
results, and extending the three mask conventions in use by never-masked positions in front."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def strip_time(value: Any, count: int, time_dim: int) -> Any:
    """Drop the first ``count`` frames of every 3-D tensor in a (nested) tuple/list of layer results."""
    if isinstance(value, torch.Tensor) and value.dim() == 3:
        return value.narrow(time_dim, count, value.size(time_dim) - count)
    if isinstance(value, (tuple, list)):
        return type(value)(strip_time(item, count, time_dim) for item in value)
    return value


def prepend_rows(rows: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Prepend learned ``(n, dim)`` rows to a batch-major ``(B, T, dim)`` tensor."""
    return torch.cat([rows.to(x.dtype).expand(x.size(0), -1, -1), x], dim=1)


def prepend_unmasked(mask: torch.Tensor | None, count: int) -> torch.Tensor | None:
    """Extend a ``(B, S)`` key padding mask (True = padding) by ``count`` never-padded positions in front."""
    if mask is None:
        return None
    return torch.cat([mask.new_zeros(mask.size(0), count), mask], dim=1)


def prepend_kept(mask: torch.Tensor | None, count: int, queries: bool) -> torch.Tensor | None:
    """Extend a transformers attention mask by ``count`` positions in front that take part: a ``(B, S)`` mask
    (1 = keep) or a ``(B, 1, T, S)`` one (additive, or bool with True = attend), on its key axis and, with
    ``queries``, its query axis too."""
    if mask is None:
        return None
    if mask.dim() == 2:
        return torch.cat([mask.new_ones(mask.size(0), count), mask], dim=1)
    mask = nn.functional.pad(mask, (count, 0), value=True if mask.dtype == torch.bool else 0.0)
    if not queries:
        return mask
    # the new queries see the keys the others see (a padding mask's rows are all alike)
    return torch.cat([mask[:, :, :1].expand(-1, -1, count, -1), mask], dim=2)
