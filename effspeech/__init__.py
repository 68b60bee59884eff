"""effspeech: parameter-efficient tuning of self-supervised speech models.

The package itself is the core: ``attach(model, spec)`` and what it returns, the registry of adapter
methods and the errors. Importing it imports neither torch nor S3PRL (the names below load on first
use), and nothing in it patches another library: the S3PRL compatibility layer lives in
``effspeech.superb`` and is installed only when that package is imported."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the core module that defines it
_EXPORTS = {
    "attach": "effspeech.engine",
    "adapters_of": "effspeech.engine",
    "AdapterSet": "effspeech.engine",
    "AdapterMethod": "effspeech.method",
    "MethodConfig": "effspeech.method",
    "available_adapters": "effspeech.registry",
    "register_adapter": "effspeech.registry",
    "count_parameters": "effspeech.count",
    "load_peft": "effspeech.peft_format",
    "EffspeechError": "effspeech.errors",
    "ConfigError": "effspeech.errors",
    "UnknownNameError": "effspeech.errors",
    # the one entry point of an upper layer: prediction with a trained task checkpoint (docs/inference.md)
    "load_task": "effspeech.superb.inference",
    "load_tasks": "effspeech.superb.inference",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'effspeech' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
