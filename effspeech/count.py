"""Parameter counts, each tensor once: a LoRA factor is reachable both from the model and from the
parametrization that owns it, and a plain ``sum(p.numel() ...)`` over two sources would count it twice."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn


def count_parameters(source: nn.Module | Iterable[nn.Parameter], trainable_only: bool = False) -> int:
    """Elements of every distinct tensor of ``source`` (a module or parameters), or only of those that train."""
    parameters = source.parameters() if isinstance(source, nn.Module) else source
    unique = {id(parameter): parameter for parameter in parameters}.values()
    return sum(parameter.numel() for parameter in unique if parameter.requires_grad or not trainable_only)
