"""The SUPERB tasks: short aliases, where each recipe's config lives, and which split is its test split."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Task:
    name: str  # the s3prl.downstream package
    alias: str
    test_split: str  # what -m evaluate reports by default
    metric: str  # the headline metric the recipe logs
    higher_is_better: bool
    in_percent: bool = False  # the recipe logs it as 0-100 (ASR's WER), not as a fraction


TASKS = {
    task.name: task
    for task in (
        Task("asr", "asr", "test-clean", "wer", False, in_percent=True),
        Task("voxceleb1", "sid", "test", "acc", True),
        Task("speech_commands", "ks", "test", "acc", True),
        Task("fluent_commands", "ic", "test", "acc", True),
        Task("emotion", "er", "test", "acc", True),
        Task("diarization", "sd", "test", "der", False),
    )
}
ALIASES = {task.alias: task.name for task in TASKS.values()}


def resolve_task(name: str) -> str:
    """``ks`` -> ``speech_commands``; S3PRL's own names (any ``s3prl.downstream.<name>``) pass through."""
    if not name:
        raise ValueError("-d/--downstream is required for a new experiment")
    canonical = ALIASES.get(name, name)
    if canonical not in TASKS and not _is_s3prl_recipe(canonical):
        known = ", ".join(f"{alias} ({task})" for alias, task in ALIASES.items())
        raise ValueError(f"unknown downstream {name!r}; known: {known}, or an s3prl.downstream package name")
    return canonical


def _is_s3prl_recipe(name: str) -> bool:
    try:
        return importlib.util.find_spec(f"s3prl.downstream.{name}.expert") is not None
    except ModuleNotFoundError:
        return False


def task_info(name: str) -> Task:
    """Known tasks have a table entry; other S3PRL recipes get neutral defaults."""
    return TASKS.get(name) or Task(name, name, "test", "", True)


def default_config_path(task: str) -> Path:
    """``./downstream/<task>/config.yaml`` as in S3PRL when it exists, else the one shipped in this repo."""
    local = Path("downstream", task, "config.yaml")
    return local if local.is_file() else REPO_ROOT / "downstream" / task / "config.yaml"
