"""What every adapter method is: a validated config dataclass and an ``attach`` that wires modules in
through the shared ``Injector``; plus the few tensor helpers several methods share."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.injector import Injector


class MethodConfig:
    """Base for each method's ``@dataclass`` config: ``validate()`` refuses out-of-range values."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the offending hyperparameter."""


class AdapterMethod:
    name: ClassVar[str]
    Config: ClassVar[type[MethodConfig]]

    def __init__(self, config: MethodConfig) -> None:
        self.config = config

    def attach(self, anatomy: Anatomy, injector: Injector) -> nn.Module:
        """Create this method's modules, wire them into the upstream, return the module owning them."""
        raise NotImplementedError


def require_positive(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{type(config).__name__}.{name} must be a positive number, got {value!r}")


def map_first(output: Any, fn) -> Any:
    """Apply ``fn`` to a module's main output, whether it returns a tensor or a tuple."""
    if isinstance(output, tuple):
        return (fn(output[0]), *output[1:])
    return fn(output)


def prepend_rows(rows: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Prepend learned ``(n, dim)`` rows to a time-major ``(T, B, dim)`` tensor."""
    return torch.cat([rows.to(x.dtype).unsqueeze(1).expand(-1, x.size(1), -1), x], dim=0)


def prepend_unmasked(mask: torch.Tensor | None, count: int) -> torch.Tensor | None:
    """Extend a ``(B, S)`` key padding mask by ``count`` never-padded positions in front."""
    if mask is None:
        return None
    return torch.cat([mask.new_zeros(mask.size(0), count), mask], dim=1)
