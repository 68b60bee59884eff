"""The ``effspeech`` command. Each subcommand lives in its own module with ``add_arguments(parser)`` and
``run(args) -> exit status``; only the module of the subcommand being run is imported, so
``effspeech --help`` imports neither torch nor S3PRL.

A user's mistake (an ``EffspeechError``: an unknown name, a missing file, an offline download) ends in
one line on stderr and exit status 2; ``--debug`` shows its traceback instead."""

from __future__ import annotations

import argparse
import importlib
import sys

from effspeech.errors import EffspeechError, report

DESCRIPTION = (
    "Parameter-efficient tuning of self-supervised speech models (HuBERT, wav2vec 2.0, WavLM) on S3PRL's "
    "SUPERB tasks. Training itself is run_downstream.py (S3PRL's flags plus --adapter); these commands "
    "count, benchmark, tabulate, generate data and check it."
)
# subcommand -> (module with add_arguments/run, one-line description)
COMMANDS = {
    "params": ("effspeech.tools.params", "count the parameters an adapter spec trains"),
    "demo": ("effspeech.tools.demo", "Mini-SUPERB KS with the best efficient method of the shipped table"),
    "leaderboard": ("effspeech.tools.leaderboard.cli", "run the method x task grid and tabulate it"),
    "bench": ("effspeech.tools.bench.cli", "time, memory and checkpoint size per method"),
    "synth": ("effspeech.tools.synth.cli", "generate the Mini-SUPERB synthetic corpora (needs espeak-ng)"),
    "check-data": ("effspeech.tools.checkdata", "scan a task's data set for faulty files"),
    "predict": ("effspeech.tools.predict", "predict recordings with a trained checkpoint, one JSON line each"),
    "average": ("effspeech.tools.average", "mean metrics over experiments (SUPERB's five ER folds)"),
    "pretrain": ("effspeech.tools.pretrain.cli", "HuBERT-style masked-prediction pretraining of a small upstream"),
    "make-checkpoint": ("effspeech.tools.make_checkpoint", "write a random-initialised upstream checkpoint"),
    "convert": ("effspeech.tools.convert", "convert an upstream checkpoint between S3PRL's and transformers' formats"),
    "export-peft": ("effspeech.tools.export_peft", "write a trained adapter as a Hugging Face PEFT directory"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the flags of ``command`` only (the others parse nothing past their name)."""
    parser = argparse.ArgumentParser(prog="effspeech", description=DESCRIPTION)
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error, not one line")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=summary, description=summary, parents=[debug])
        if name == command:
            importlib.import_module(module).add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    try:
        return int(importlib.import_module(COMMANDS[args.command][0]).run(args) or 0)
    except EffspeechError as error:
        if args.debug:
            raise
        return report(error, f"effspeech {args.command}")


if __name__ == "__main__":
    sys.exit(main())
