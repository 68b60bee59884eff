"""The learning-rate sweep behind the mini preset's ``method_rates``: every method x rate x task is one
leaderboard cell (the mini preset's settings, the given rate for the method's own tensors, the
leaderboard's frozen cache unless ``--no-cache``), scored by
its best dev accuracy during training (SUPERB's protocol: choose on dev; the test metric each cell
also records is not used).

    python benchmarks/lr_sweep.py --out /tmp/sweep --methods dora,ia3,parallel,lnfit,elp --tasks ks,sid \\
        --rates 1e-4,3e-4,1e-3,3e-3 --jobs 2

Prints one row per method and rate (dev accuracy per task and their mean) and the best rate of each
method, and writes the rows to OUT/sweep.json. Finished cells are reused on a rerun."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from effspeech.superb import records
from effspeech.superb.frozen_store import default_root
from effspeech.superb.upstream import offline_checkpoint
from effspeech.tools.leaderboard.execute import run_cell
from effspeech.tools.leaderboard.grid import PRESETS, Launch, build_cells
from effspeech.tools.synth.cache import cached_corpus


def best_dev(expdir: Path, metric: str = "acc") -> float | None:
    history = records.read_results(expdir).get("train", {}).get("history", [])
    values = [entry["value"] for entry in history if entry["split"] == "dev" and entry["metric"] == metric]
    return max(values) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--methods", required=True)
    parser.add_argument("--tasks", default="ks,sid", help="tasks scored by dev accuracy (not er: it has folds)")
    parser.add_argument("--rates", default="1e-4,3e-4,1e-3,3e-3")
    parser.add_argument("--upstream", default="hubert_mini_adapter")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache-dir", help="the frozen cache the cells share (default: the leaderboard's)")
    parser.add_argument("--no-cache", action="store_true", help="compute the frozen part batched, uncached")
    args = parser.parse_args()
    methods, tasks = args.methods.split(","), args.tasks.split(",")
    rates = [float(rate) for rate in args.rates.split(",")]

    data = str(cached_corpus(PRESETS["mini"].corpus, 0, args.jobs))
    checkpoints = {args.upstream: str(offline_checkpoint(args.upstream))}
    cache = None if args.no_cache else str(args.cache_dir or default_root())
    runs = []  # (method, rate, task, cell, expdir, launch)
    for method in methods:
        for rate in rates:
            preset = dataclasses.replace(PRESETS["mini"], method_rates={method: rate})
            launch = Launch(preset, checkpoints, data, cache=cache, cache_size="50G")
            for cell in build_cells([args.upstream], [method], tasks, preset):
                runs.append((method, rate, cell.task, cell, args.out / method / f"lr{rate:g}" / cell.task, launch))
    pending = [run for run in runs if not records.is_evaluated(run[4])]
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    print(f"{len(runs)} cells, {len(pending)} to run", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        codes = list(pool.map(lambda run: run_cell(run[3], run[4], run[5], threads), pending))
    if any(codes):
        print(f"{sum(1 for code in codes if code)} cell(s) failed: see their cell.log", file=sys.stderr)

    rows = []
    for method in methods:
        for rate in rates:
            scores = {task: best_dev(args.out / method / f"lr{rate:g}" / task) for task in tasks}
            complete = all(value is not None for value in scores.values())
            mean = sum(scores.values()) / len(scores) if complete else None
            rows.append({"method": method, "lr": rate, "dev_acc": scores, "mean": mean})
    header = f"| method | lr | {' | '.join(f'{task.upper()} dev acc %' for task in tasks)} | mean |"
    print(header + "\n|" + "---|" * (len(tasks) + 3))
    for row in rows:
        cells = [f"{100 * v:.1f}" if v is not None else "-" for v in row["dev_acc"].values()]
        mean = f"{100 * row['mean']:.1f}" if row["mean"] is not None else "-"
        print(f"| {row['method']} | {row['lr']:g} | {' | '.join(cells)} | {mean} |")
    for method in methods:
        scored = [row for row in rows if row["method"] == method and row["mean"] is not None]
        if scored:
            best = max(scored, key=lambda row: row["mean"])
            print(f"best {method}: lr {best['lr']:g} (mean dev accuracy {100 * best['mean']:.1f} %)")
    (args.out / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 1 if any(codes) else 0


if __name__ == "__main__":
    sys.exit(main())
