"""Experiment config: the task's YAML, S3PRL's ``-o`` overrides and the ``adapter:`` section that turns
``--adapter`` into an attach spec plus a learning rate per method."""

from __future__ import annotations

import ast
import copy
import sys
from argparse import Namespace
from pathlib import Path
from typing import Any

import yaml

from effspeech.errors import ConfigError, MissingFileError
from effspeech.spec import Spec, parse_spec

# Key in the ``adapter:`` section that is a training setting, not a method hyperparameter.
LR_KEY = "lr"
# Pseudo-method in the ``adapter:`` section that holds the settings of -f (full fine-tuning).
FINETUNE = "finetune"


def load_config(path: str | Path) -> dict[str, Any]:
    """A task config; a missing file or broken YAML is an error naming the file."""
    try:
        with open(path) as file:
            return yaml.safe_load(file) or {}
    except FileNotFoundError as error:
        raise MissingFileError(f"config {path} does not exist") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"config {path} is not valid YAML: {error}") from error


def save_yaml(data: dict[str, Any], path: str | Path) -> None:
    with open(path, "w") as file:
        yaml.safe_dump(data, file, sort_keys=False)


def parse_value(text: str) -> Any:
    """An override value as a Python literal when it is one (numbers, lists, True, None), else the string.
    S3PRL ``eval``s here; a literal parser accepts the same inputs without running code."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def set_key(config: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested config, creating the sections on the way."""
    *sections, name = path.split(".")
    for section in sections:
        config = config.setdefault(section, {})
    config[name] = value


def apply_overrides(text: str | None, args: Namespace, config: dict[str, Any]) -> list[str]:
    """Apply S3PRL's ``-o "config.a.b=1,,args.c=x"`` in place; return the applied ``key=value`` strings."""
    if text is None or text.strip().lower() == "none":
        return []
    applied = []
    for option in text.split(",,"):
        key, sep, value_text = option.strip().partition("=")
        if not sep:
            raise ConfigError(f"override {option!r} has no '=': write config.a.b=value or args.name=value")
        first, *fields = key.strip().split(".")
        value = parse_value(value_text.strip())
        if first == "args" and len(fields) == 1:
            setattr(args, fields[0], value)
        elif first == "config" and fields:
            set_key(config, ".".join(fields), value)
        else:
            raise ConfigError(f"override key {key!r} must be config.<path> or args.<name>")
        print(f"[Override] - {key.strip()} = {value!r}", file=sys.stderr)
        applied.append(f"{key.strip()}={value!r}")
    return applied


def adapter_plan(adapter: str | None, config: dict[str, Any]) -> tuple[Spec, dict[str, float]]:
    """The attach spec for ``--adapter`` with hyperparameters from ``config['adapter']``, and each method's
    learning rate (``lr`` is popped: it is a training setting, not something the method accepts)."""
    section = config.get("adapter") or {}
    spec: Spec = {}
    rates: dict[str, float] = {}
    for name, hyperparameters in parse_spec(adapter).items():
        settings = {**copy.deepcopy(section.get(name) or {}), **hyperparameters}
        if LR_KEY in settings:
            rates[name] = float(settings.pop(LR_KEY))
        spec[name] = settings
    return spec, rates


def finetune_lr(config: dict[str, Any]) -> float | None:
    """The learning rate of the whole upstream under -f (``adapter.finetune.lr``), None = ``optimizer.lr``."""
    rate = ((config.get("adapter") or {}).get(FINETUNE) or {}).get(LR_KEY)
    return None if rate is None else float(rate)
