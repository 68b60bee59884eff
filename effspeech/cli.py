"""The ``effspeech`` command: one subcommand per module, each with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys

# module path -> each module defines register(subparsers) that adds its subcommand(s)
# and sets ``func`` (args -> exit status) on its parser.
COMMAND_MODULES = [
    "effspeech.bench.cli",
    "effspeech.checkdata.cli",
    "effspeech.checkpoints",
    "effspeech.demo",
    "effspeech.leaderboard.cli",
    "effspeech.pretrain.cli",
    "effspeech.report",
    "effspeech.synth",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="effspeech", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
