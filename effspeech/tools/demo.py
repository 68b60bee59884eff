"""``effspeech demo`` (``make demo``): the whole pipeline in minutes on CPU, as one cell of the leaderboard.
Generate Mini-SUPERB tiny, train Houlsby adapters on keyword spotting over the embedded upstream, evaluate
the best dev checkpoint on the test set, and say what was trained. The budget is the ``mini`` preset's
with fewer steps (240, evaluated every 60)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from effspeech.errors import ConfigError, EffspeechError

LOG_TAIL = 15  # lines of the cell's log shown when it fails
LEGACY_RECORD = "upstream.sha256"  # the upstream's digest, as demo folders from before 2026-12 recorded it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-u", "--upstream", default="hubert_mini_adapter", help="an entry with an embedded default")
    parser.add_argument("--adapter", default="houlsby", help="a method, or none / finetune")
    parser.add_argument("--steps", type=int, default=240)
    parser.add_argument("--expdir", default="result/downstream/demo_ks_houlsby")
    parser.add_argument("--jobs", type=int, default=2, help="processes for the speech generator")


def run(args: argparse.Namespace) -> int:
    run_demo(args.upstream, args.adapter, args.steps, Path(args.expdir), args.jobs)
    return 0


def run_demo(upstream: str, adapter: str, steps: int, expdir: Path, jobs: int) -> dict:
    from tqdm import tqdm

    from effspeech.superb import records
    from effspeech.superb.tasks.ks import CLASSES
    from effspeech.superb.upstream import offline_checkpoint
    from effspeech.tools.leaderboard.execute import LOG_FILE, is_stale, run_cell
    from effspeech.tools.leaderboard.grid import PRESETS, Launch, build_cells
    from effspeech.tools.leaderboard.table import upstream_size
    from effspeech.tools.synth.cache import cached_corpus

    started = time.time()
    preset = dataclasses.replace(PRESETS["mini"], name="demo", steps=steps, eval_every=max(1, steps // 4))
    (cell,) = build_cells([upstream], [adapter], ["ks"], preset)
    checkpoint = str(offline_checkpoint(upstream))
    data = cached_corpus("tiny", seed=0, jobs=jobs)
    print(f"data: Mini-SUPERB tiny at {data} ({time.time() - started:.0f} s)")
    launch = Launch(preset, {upstream: checkpoint}, str(data))
    legacy = expdir / LEGACY_RECORD
    trained_elsewhere = legacy.is_file() and legacy.read_text().strip() != records.file_digest(checkpoint)
    if trained_elsewhere or is_stale(cell, expdir, launch):
        raise ConfigError(
            f"{expdir} was trained with other settings or on another upstream checkpoint (now {checkpoint}); "
            "pass another --expdir, or delete that folder to retrain"
        )
    if not records.is_evaluated(expdir):
        with tqdm(total=steps, desc=f"KS {adapter} on {upstream}", unit="step", dynamic_ncols=True) as bar:

            def show(progress: records.Progress | None) -> None:
                if progress is not None:  # evaluating the best checkpoint reports its (earlier) step
                    bar.n = max(bar.n, progress.step)
                    bar.set_postfix_str(progress.phase, refresh=False)
                    bar.refresh()

            code = run_cell(cell, expdir, launch, threads=None, watch=show)
        if code != 0:
            tail = (expdir / LOG_FILE).read_text(errors="replace").splitlines()[-LOG_TAIL:]
            print("\n".join(tail), file=sys.stderr)
            raise EffspeechError(f"the demo's run failed (exit status {code}); its whole log is {expdir / LOG_FILE}")

    results = records.read_results(expdir)
    split, metrics = records.evaluation(results)
    trainable = records.trainable_params(results)
    upstream_params = upstream_size(upstream, checkpoint)
    summary = {
        "test_accuracy": metrics["acc"],
        "chance": 1 / len(CLASSES),
        "trainable_upstream": trainable["upstream"],
        "upstream_params": upstream_params,
        "trainable_share": trainable["upstream"] / upstream_params,
        "trainable_total": trainable["total"],
        "wall_time_s": round(time.time() - started, 1),
    }
    print(
        f"\nKS {split} accuracy: {100 * summary['test_accuracy']:.1f}% (chance {100 * summary['chance']:.1f}%), "
        f"{steps} steps of {adapter} on {upstream}\n"
        f"trainable: {trainable['upstream']:,} adapter parameters = {100 * summary['trainable_share']:.2f}% of the "
        f"upstream's {upstream_params:,}; with featurizer and head {trainable['total']:,}\n"
        f"experiment: {expdir} ({summary['wall_time_s']:.0f} s)"
    )
    return summary
