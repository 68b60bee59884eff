"""The SUPERB tasks, one module each. Everything effspeech knows about a task is its module's ``TASK``
(aliases, test split, metric, data and batch keys, best checkpoint, audio quirks, what check-data
scans, its budgets); its S3PRL recipe settings are ``downstream/<name>/config.yaml``.

Adding a task: a module here defining ``TASK`` (a ``task.Task``), its name in ``MODULES``, and its config
at ``downstream/<name>/config.yaml`` (docs/architecture.md)."""

from __future__ import annotations

import importlib
import importlib.util

from effspeech.errors import ConfigError, UnknownNameError
from effspeech.superb.tasks.task import Budget, Task

__all__ = ["ALIASES", "MODULES", "TASKS", "Budget", "Task", "by_alias", "get_task", "resolve_task"]

MODULES = ("ks", "ic", "sid", "er", "asr", "sd")  # the order of the leaderboard's columns


def _load() -> dict[str, Task]:
    tasks = [importlib.import_module(f"{__name__}.{module}").TASK for module in MODULES]
    return {task.name: task for task in tasks}


TASKS: dict[str, Task] = _load()
ALIASES: dict[str, str] = {task.alias: task.name for task in TASKS.values()}


def by_alias(alias: str) -> Task:
    """``ks`` -> the KS task; the error lists the aliases."""
    if alias not in ALIASES:
        raise UnknownNameError(f"unknown task {alias!r}; valid: {', '.join(ALIASES)}")
    return TASKS[ALIASES[alias]]


def resolve_task(name: str) -> str:
    """``ks`` -> ``speech_commands``; S3PRL's own names (any ``s3prl.downstream.<name>``) pass through."""
    if not name:
        raise ConfigError("-d/--downstream is required for a new experiment")
    canonical = ALIASES.get(name, name)
    if canonical not in TASKS and not _is_s3prl_recipe(canonical):
        known = ", ".join(f"{alias} ({task})" for alias, task in ALIASES.items())
        raise UnknownNameError(f"unknown downstream {name!r}; known: {known}, or an s3prl.downstream package name")
    return canonical


def get_task(name: str) -> Task:
    """A table task by name; other S3PRL recipes get neutral defaults (no data keys, no budgets)."""
    return TASKS.get(name) or Task(name, name, "test", "", True)


def _is_s3prl_recipe(name: str) -> bool:
    try:
        return importlib.util.find_spec(f"s3prl.downstream.{name}.expert") is not None
    except ModuleNotFoundError:
        return False
