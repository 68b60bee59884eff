"""What every adapter method is: a validated config dataclass and an ``attach`` that creates the
method's modules and wires them into the upstream through the shared ``Injector``."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.errors import ConfigError
from effspeech.injector import Injector


class MethodConfig:
    """Base for each method's ``@dataclass`` config: ``validate()`` refuses out-of-range values."""

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the offending hyperparameter."""


class AdapterMethod:
    name: ClassVar[str]
    Config: ClassVar[type[MethodConfig]]

    def __init__(self, config: MethodConfig) -> None:
        self.config = config

    def attach(self, anatomy: Anatomy, injector: Injector) -> nn.Module:
        """Create this method's modules, wire them into the upstream, return the module owning them."""
        raise NotImplementedError


def require_positive(config: Any, *names: str) -> None:
    """Refuse a hyperparameter that is not a positive number, naming it."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{type(config).__name__}.{name} must be a positive number, got {value!r}")
