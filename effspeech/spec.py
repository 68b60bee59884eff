"""Adapter specs: what users write (``"houlsby,lora"``, a list, a dict) to a resolved, validated form."""

from __future__ import annotations

import dataclasses
from typing import Any

from effspeech.errors import ConfigError
from effspeech.registry import get_method

Spec = dict[str, dict[str, Any]]
NO_ADAPTER = ("", "none")


def parse_spec(spec: str | list | tuple | dict | None) -> Spec:
    """Normalise a spec to ``{method: {hyperparameter: value}}``; ``None``/``"none"`` give ``{}``."""
    if spec is None:
        return {}
    if isinstance(spec, str):
        names = [part.strip() for part in spec.split(",")]
        return {name: {} for name in names if name not in NO_ADAPTER}
    if isinstance(spec, (list, tuple)):
        parsed: Spec = {}
        for item in spec:
            parsed.update(parse_spec(item))
        return parsed
    if isinstance(spec, dict):
        parsed = {}
        for name, hyperparameters in spec.items():
            if hyperparameters is not None and not isinstance(hyperparameters, dict):
                given = repr(hyperparameters)
                raise ConfigError(f"adapter spec for {name!r} must be a dict of hyperparameters, got {given}")
            parsed[str(name)] = dict(hyperparameters or {})
        return parsed
    raise ConfigError(f"an adapter spec is a name, a list of names or a dict, not {type(spec).__name__}")


def resolve_configs(spec: str | list | tuple | dict | None) -> dict[str, Any]:
    """Build and validate each method's config dataclass, before any model is touched."""
    configs = {}
    for name, hyperparameters in parse_spec(spec).items():
        config_class = get_method(name).Config
        fields = {field.name for field in dataclasses.fields(config_class)}
        unknown = sorted(set(hyperparameters) - fields)
        if unknown:
            raise ConfigError(
                f"unknown hyperparameter(s) {unknown} for adapter {name!r}; valid: {', '.join(sorted(fields))}"
            )
        config = config_class(**hyperparameters)
        config.validate()
        configs[name] = config
    return configs


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config as plain YAML-serialisable values (tuples become lists)."""
    return {
        key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(config).items()
    }
