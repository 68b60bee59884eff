"""``effspeech average DIR...``: the mean of every split/metric over experiments, as SUPERB reports ER
(the five IEMOCAP folds)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("expdirs", nargs="+", help="experiment directories holding results.json")
    parser.add_argument("--out", help="also write the average to this JSON file")


def run(args: argparse.Namespace) -> int:
    from effspeech.superb.records import average_results

    text = json.dumps(average_results(args.expdirs), indent=2) + "\n"
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text)
    return 0
