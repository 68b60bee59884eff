"""``effspeech check-data -d TASK [-c CONFIG] [-o OVERRIDES] [--data-root DIR]``: every fault of every file
the task's recipe would read, found before a run rather than hours into it. Exit status 1 on errors."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import TYPE_CHECKING, Any

from effspeech.errors import ConfigError

if TYPE_CHECKING:
    from effspeech.superb.audio import Problem
    from effspeech.superb.tasks import Task


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--downstream", required=True, help="task: asr, sid, ks, ic, er, sd")
    parser.add_argument("-c", "--config", help="task config yaml (default: downstream/<task>/config.yaml)")
    parser.add_argument("-o", "--override", help="run_downstream.py's -o: 'config.a.b=v,,...'")
    parser.add_argument("--data-root", dest="data_root", help="Mini-SUPERB root: fills the task's data paths")
    parser.add_argument("--strict", action="store_true", help="warnings (rate, channels, clipping) fail too")


def check(task: Task, config: dict[str, Any]) -> tuple[int, list[Problem]]:
    """(number of audio files, every problem), each file read once however many splits list it."""
    from effspeech.superb.audio import Problem, inspect_file

    problems = []
    seen: set[str] = set()
    section = config.get("downstream_expert", {}).get(task.data_section, {})
    try:
        for item in task.list_audio(section):
            if isinstance(item, Problem):
                problems.append(item)
            elif item.path not in seen:
                seen.add(item.path)
                problems += inspect_file(item.path)
    except (OSError, KeyError, ValueError) as error:  # the metadata itself: the recipe would not even start
        problems.append(
            Problem(str(getattr(error, "filename", "") or "metadata"), "error", f"unreadable metadata: {error!r}")
        )
    return len(seen), problems


def run(args: argparse.Namespace) -> int:
    from effspeech.superb.tasks import get_task, resolve_task
    from effspeech.superb.trainer.config import apply_overrides, load_config

    task = get_task(resolve_task(args.downstream))
    if task.list_audio is None:
        raise ConfigError(f"check-data knows the SUPERB tasks, not the {task.name!r} recipe")
    config = load_config(args.config or task.config_path())
    if args.data_root:
        task.fill_data_paths(config, args.data_root)
    apply_overrides(args.override, argparse.Namespace(), config)
    files, problems = check(task, config)
    for problem in problems:
        print(problem)
    counts = Counter(problem.severity for problem in problems)
    print(f"{task.name}: {files} audio files, {counts['error']} errors, {counts['warning']} warnings")
    failing = counts["error"] + (counts["warning"] if args.strict else 0)
    return 1 if failing else 0
