"""``effspeech synth``: write the Mini-SUPERB corpora (all six tasks, or some) under one folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", required=True, help="corpus size: tiny, small or medium (docs/mini-superb.md)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (one subfolder per task)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (output does not depend on it)")
    parser.add_argument("--tasks", nargs="+", help="a subset of the tasks, by alias (default: all six)")


def run(args: argparse.Namespace) -> int:
    from effspeech.tools.synth.mini_superb import generate

    started = time.perf_counter()
    metas = generate(args.preset, args.out, args.seed, args.jobs, args.tasks, log=print)
    hours = sum(meta["hours"] for meta in metas.values())
    print(f"wrote {len(metas)} task(s), {hours:.3f} h of audio, to {args.out} in {time.perf_counter() - started:.1f} s")
    return 0
