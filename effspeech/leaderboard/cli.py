"""``effspeech leaderboard``: run (or print) the grid, then write the table, the CSV/JSON and the plot."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from effspeech.leaderboard.execute import is_finished, run_grid, stale_cells
from effspeech.leaderboard.grid import METHODS, PRESETS, TASKS, Launch, build_cells
from effspeech.leaderboard.plot import plot_pareto
from effspeech.leaderboard.status import format_status
from effspeech.leaderboard.table import build_rows, write_outputs
from effspeech.synth.cache import COMPLETE, cached_corpus, corpus_root

SYNTH_PRESET = {"smoke": "tiny", "mini": "small"}


def upstream_sizes(checkpoints: dict[str, str | None]) -> dict[str, int]:
    """Parameters of each upstream as loaded, before any adapter: the denominator of the share."""
    from effspeech.report import count_unique
    from upstream_adapters import ENTRIES

    sizes = {}
    for name, path in checkpoints.items():
        try:
            sizes[name] = count_unique(ENTRIES[name](ckpt=path))
        except Exception as error:  # the cells of this upstream failed too: the table says so
            print(f"cannot load {name} to count its parameters: {error}", file=sys.stderr)
    return sizes


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def run(args: argparse.Namespace) -> int:
    preset = PRESETS[args.preset]
    if args.steps:
        preset = dataclasses.replace(preset, steps=dict.fromkeys(TASKS, args.steps))
    upstreams, methods, tasks = _split(args.upstreams), _split(args.methods), _split(args.tasks)
    cells = build_cells(upstreams, methods, tasks, preset)
    out = Path(args.out)
    if args.status:
        print(format_status(cells, out))
        return 0

    checkpoints = dict(item.split("=", 1) for item in args.ckpt) if args.ckpt else {}
    data_root = args.data_root
    if preset.offline:
        from effspeech.assets import default_checkpoint

        checkpoints = {u: checkpoints.get(u) or str(default_checkpoint(u)) for u in upstreams}
        if data_root is None and args.dry_run:
            data_root = str(corpus_root(SYNTH_PRESET[args.preset], args.data_seed))
            if not (Path(data_root) / COMPLETE).is_file():
                synth = f"effspeech synth --preset {SYNTH_PRESET[args.preset]} --seed {args.data_seed}"
                print(f"{synth} --out {data_root} && touch {data_root}/{COMPLETE}")
        elif data_root is None:
            data_root = str(cached_corpus(SYNTH_PRESET[args.preset], args.data_seed, args.jobs))
    launch = Launch(out, preset, checkpoints, data_root, args.launcher, args.nproc, args.seed)
    if args.dry_run:
        for cell in cells:
            if not is_finished(cell.expdir(out)):
                print(launch.shell_line(cell))
        return 0

    out.mkdir(parents=True, exist_ok=True)
    stale = stale_cells(cells, launch)
    if stale:
        names = ", ".join(cell.name for cell in stale)
        warning = f"warning: {len(stale)} finished cell(s) ran with other settings and are kept as they are: {names}"
        print(warning + " (delete a cell's directory to rerun it)", file=sys.stderr)
    codes = run_grid(cells, launch, args.jobs)
    rows = build_rows(cells, out, upstream_sizes({u: checkpoints.get(u) for u in upstreams}))
    paths = write_outputs(rows, tasks, out) + [plot_pareto(rows, tasks, out / "pareto.png")]
    print((out / "leaderboard.md").read_text())
    print(format_status(cells, out))
    print("wrote " + ", ".join(str(p) for p in paths))
    failed = [cell.name for cell in cells if not is_finished(cell.expdir(out))]
    if failed:
        print(f"{len(failed)} cell(s) did not finish: {', '.join(failed)} (see <cell>/cell.log)")
    return 1 if failed or any(codes.values()) else 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("leaderboard", help="run the method x task grid and tabulate it")
    parser.add_argument("--upstreams", default="hubert_mini_adapter", help="comma list of upstream entries")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma list of {', '.join(METHODS)}")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma list of ks, ic, sid, er, asr, sd")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="mini")
    parser.add_argument("--out", required=True, help="grid directory: one experiment directory per cell")
    parser.add_argument("--jobs", type=int, default=1, help="cells run in parallel on this machine")
    parser.add_argument("--launcher", choices=["local", "torchrun"], default="local")
    parser.add_argument("--nproc", type=int, default=1, help="processes per cell with --launcher torchrun")
    parser.add_argument("--dry-run", action="store_true", help="print one shell line per unfinished cell")
    parser.add_argument("--status", action="store_true", help="only show which cells are done/running/failed")
    parser.add_argument("--ckpt", action="append", metavar="UPSTREAM=PATH", help="upstream checkpoint (-k)")
    parser.add_argument("--data-root", help="Mini-SUPERB root (smoke/mini generate and cache one by default)")
    parser.add_argument("--steps", type=int, help="override every task's training steps")
    parser.add_argument("--seed", type=int, default=1337, help="training seed of every cell")
    parser.add_argument("--data-seed", type=int, default=0, help="Mini-SUPERB generator seed")
    parser.set_defaults(func=run)
