"""``effspeech leaderboard``: run (or print) the grid, then write the table, the CSV/JSON and the plot."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from effspeech.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--upstreams", default="hubert_mini_adapter", help="comma list of upstream entries")
    parser.add_argument("--methods", help="comma list, or all (the default: none, finetune, every registered method)")
    parser.add_argument("--tasks", help="comma list of ks, ic, sid, er, asr, sd (default: all six)")
    parser.add_argument("--preset", default="mini", help="smoke, mini (2 CPU cores) or superb (docs/leaderboard.md)")
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
    parser.add_argument("--seeds", type=int, default=1, help="N training seeds per cell (--seed, --seed + 1, ...)")
    parser.add_argument(
        "--lrs",
        help="comma list of learning rates of every method's tensors, or auto (each method's own rate and half a "
        "decade either side); the table reports the rate with the best mean dev score",
    )
    parser.add_argument("--data-seed", type=int, default=0, help="Mini-SUPERB generator seed")
    parser.add_argument(
        "--cache-dir",
        help="the frozen-computation cache the cells share (default: $EFFSPEECH_CACHE or ~/.cache/effspeech/frozen)",
    )
    parser.add_argument("--cache-size", default="50G", help="stop filling the cache past this size (default 50G)")
    parser.add_argument(
        "--no-cache", action="store_true", help="compute every cell's frozen part batched, as S3PRL does, uncached"
    )


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _rates(text: str | None) -> list[float] | str | None:
    if text is not None and text.strip() == "auto":
        return "auto"
    try:
        rates = [float(part) for part in _split(text)]
    except ValueError:
        raise ConfigError(f"--lrs takes a comma list of numbers, got {text!r}") from None
    bad = [rate for rate in rates if not rate > 0]
    if bad:
        raise ConfigError(f"--lrs must be positive, got {bad}")
    return rates or None


def run(args: argparse.Namespace) -> int:
    from effspeech.superb import records
    from effspeech.superb.frozen_store import default_root
    from effspeech.superb.methods import ALL, expand_all
    from effspeech.superb.tasks import ALIASES
    from effspeech.superb.upstream import offline_checkpoint
    from effspeech.tools.leaderboard.execute import run_grid, stale_cells
    from effspeech.tools.leaderboard.grid import Launch, build_cells, get_preset
    from effspeech.tools.leaderboard.plot import plot_pareto
    from effspeech.tools.leaderboard.status import format_status
    from effspeech.tools.leaderboard.table import build_rows, upstream_size, write_outputs
    from effspeech.tools.synth.cache import COMPLETE, cached_corpus, corpus_root

    preset = get_preset(args.preset)
    if args.steps:
        preset = dataclasses.replace(preset, steps=args.steps)
    upstreams, methods = _split(args.upstreams), expand_all(_split(args.methods or ALL))
    tasks = _split(args.tasks) or list(ALIASES)
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {args.seeds}")
    seeds = [args.seed + k for k in range(args.seeds)] if args.seeds > 1 else None
    cells = build_cells(upstreams, methods, tasks, preset, _rates(args.lrs), seeds)
    out = Path(args.out)
    if args.status:
        print(format_status(cells, out))
        return 0

    checkpoints = dict(item.split("=", 1) for item in args.ckpt) if args.ckpt else {}
    data_root = args.data_root
    if preset.offline:
        checkpoints = {u: checkpoints.get(u) or str(offline_checkpoint(u)) for u in upstreams}
        if data_root is None and args.dry_run:
            data_root = str(corpus_root(preset.corpus, args.data_seed))
            if not (Path(data_root) / COMPLETE).is_file():
                synth = f"effspeech synth --preset {preset.corpus} --seed {args.data_seed}"
                print(f"{synth} --out {data_root} && touch {data_root}/{COMPLETE}")
        elif data_root is None:
            data_root = str(cached_corpus(preset.corpus, args.data_seed, args.jobs))
    cache = None if args.no_cache else str(args.cache_dir or default_root())
    launch = Launch(preset, checkpoints, data_root, args.launcher, args.nproc, args.seed, cache, args.cache_size)
    if args.dry_run:
        for cell in cells:
            if not records.is_evaluated(cell.expdir(out)):
                print(launch.shell_line(cell, cell.expdir(out)))
        return 0

    out.mkdir(parents=True, exist_ok=True)
    stale = stale_cells(cells, out, launch)
    if stale:
        names = ", ".join(cell.name for cell in stale)
        print(
            f"warning: {len(stale)} cell(s) ran with other settings and are left as they are (finished ones are "
            f"tabulated, unfinished ones not resumed): {names}; delete a cell's directory to rerun it",
            file=sys.stderr,
        )
    codes = run_grid(cells, out, launch, args.jobs, skip=stale)
    sizes = {}
    for upstream in upstreams:
        try:
            sizes[upstream] = upstream_size(upstream, checkpoints.get(upstream))
        except Exception as error:  # the cells of this upstream failed too: the table says so
            print(f"cannot load {upstream} to count its parameters: {error}", file=sys.stderr)
    rows = build_rows(cells, out, sizes)
    paths = write_outputs(rows, tasks, out) + [plot_pareto(rows, tasks, out / "pareto.png")]
    print((out / "leaderboard.md").read_text())
    print(format_status(cells, out))
    print("wrote " + ", ".join(str(p) for p in paths))
    failed = [cell.name for cell in cells if not records.is_evaluated(cell.expdir(out))]
    if failed:
        print(f"{len(failed)} cell(s) did not finish: {', '.join(failed)} (see <cell>/cell.log)")
    return 1 if failed or any(codes.values()) else 0
