"""``effspeech check-data -d TASK [-c CONFIG] [-o OVERRIDES] [--data-root DIR]``: every fault of every file
the task's recipe would read, found before a run rather than hours into it. Exit status 1 on errors."""

from __future__ import annotations

import argparse
from argparse import Namespace
from collections import Counter

from effspeech.checkdata.audio import Problem, inspect_file
from effspeech.checkdata.sources import list_entries
from effspeech.trainer.config import apply_overrides, load_config
from effspeech.trainer.datasets import fill_data_paths
from effspeech.trainer.tasks import default_config_path, resolve_task


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("check-data", help="scan a task's data set for faulty files", description=__doc__)
    parser.add_argument("-d", "--downstream", required=True, help="task: asr, sid, ks, ic, er, sd")
    parser.add_argument("-c", "--config", help="task config yaml (default: downstream/<task>/config.yaml)")
    parser.add_argument("-o", "--override", help="run_downstream.py's -o: 'config.a.b=v,,...'")
    parser.add_argument("--data-root", dest="data_root", help="Mini-SUPERB root: fills the task's data paths")
    parser.add_argument("--strict", action="store_true", help="warnings (rate, channels, clipping) fail too")
    parser.set_defaults(func=run)


def check(task: str, config: dict) -> tuple[int, list[Problem]]:
    """(number of audio files, every problem), each file read once however many splits list it."""
    problems: list[Problem] = []
    seen: set[str] = set()
    try:
        for item in list_entries(task, config):
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


def run(args: Namespace) -> int:
    task = resolve_task(args.downstream)
    config = load_config(args.config or default_config_path(task))
    if args.data_root:
        fill_data_paths(task, config, args.data_root)
    apply_overrides(args.override, Namespace(), config)
    files, problems = check(task, config)
    for problem in problems:
        print(problem)
    counts = Counter(problem.severity for problem in problems)
    print(f"{task}: {files} audio files, {counts['error']} errors, {counts['warning']} warnings")
    failing = counts["error"] + (counts["warning"] if args.strict else 0)
    return 1 if failing else 0
