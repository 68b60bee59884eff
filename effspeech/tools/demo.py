"""``effspeech demo`` (``make demo``): what efficient tuning does, in minutes on CPU, as one cell of the
leaderboard. Generate Mini-SUPERB small's keyword spotting, train the best efficient method of the
shipped table (docs/leaderboard.md) over the embedded upstream at the ``mini`` preset's KS budget,
evaluate the best dev checkpoint on the test set, and print the result next to the table's weighted sum
and fine-tuning on the same checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from effspeech.errors import ConfigError, EffspeechError

LOG_TAIL = 15  # lines of the cell's log shown when it fails
LEGACY_RECORD = "upstream.sha256"  # the upstream's digest, as demo folders from before 2026-12 recorded it
REFERENCES = ("none", "finetune")  # the rows of the shipped table the demo's result is shown with
FALLBACK = "houlsby"  # the method without a shipped table for the upstream


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-u", "--upstream", default="hubert_mini_adapter", help="an entry with an embedded default")
    parser.add_argument(
        "--adapter", help="a method, or none / finetune (default: the best efficient method on KS of the shipped table)"
    )
    parser.add_argument("--steps", type=int, help="training steps (default: the mini preset's KS budget)")
    parser.add_argument("--expdir", help="default: result/downstream/demo_ks_<adapter>")
    parser.add_argument("--corpus", default="small", help="Mini-SUPERB size: small (the table's) or tiny")
    parser.add_argument("--jobs", type=int, default=2, help="processes for the speech generator")


def run(args: argparse.Namespace) -> int:
    run_demo(args.upstream, args.adapter, args.steps, args.expdir and Path(args.expdir), args.jobs, args.corpus)
    return 0


def best_efficient(rows: list[dict], task: str) -> str | None:
    """The method with the best mean test score on ``task`` among those that tune less than the upstream."""
    scored = [row for row in rows if row["method"] not in REFERENCES and row["scores"].get(task, {}).get("value")]
    return max(scored, key=lambda row: row["scores"][task]["value"])["method"] if scored else None


def run_demo(
    upstream: str,
    adapter: str | None = None,
    steps: int | None = None,
    expdir: Path | None = None,
    jobs: int = 2,
    corpus: str = "small",
) -> dict:
    from tqdm import tqdm

    from effspeech.superb import records
    from effspeech.superb.audio import Entry
    from effspeech.superb.frozen_store import default_root
    from effspeech.superb.tasks.ks import CLASSES, TASK
    from effspeech.superb.upstream import offline_checkpoint
    from effspeech.tools.leaderboard.execute import LOG_FILE, is_stale, run_cell
    from effspeech.tools.leaderboard.grid import PRESETS, Launch, build_cells
    from effspeech.tools.leaderboard.table import shipped_rows, upstream_size
    from effspeech.tools.synth.cache import cached_corpus

    started = time.time()
    checkpoint = str(offline_checkpoint(upstream))
    shipped = shipped_rows(upstream, records.file_digest(checkpoint)) if corpus == "small" else []
    adapter = adapter or best_efficient(shipped, "ks") or FALLBACK
    expdir = expdir or Path(f"result/downstream/demo_ks_{adapter}")
    preset = PRESETS["mini"]  # steps None: the table's own KS cell (seed 1337)
    if steps is not None:
        preset = dataclasses.replace(preset, name="demo", steps=steps, eval_every=max(1, steps // 4))
    (cell,) = build_cells([upstream], [adapter], ["ks"], preset)
    data = cached_corpus(corpus, seed=0, jobs=jobs, tasks=["ks"])
    print(f"data: Mini-SUPERB {corpus} (KS) at {data} ({time.time() - started:.0f} s)")
    launch = Launch(preset, {upstream: checkpoint}, str(data), cache=str(default_root()))
    legacy = expdir / LEGACY_RECORD
    trained_elsewhere = legacy.is_file() and legacy.read_text().strip() != records.file_digest(checkpoint)
    if trained_elsewhere or is_stale(cell, expdir, launch):
        raise ConfigError(
            f"{expdir} was trained with other settings or on another upstream checkpoint (now {checkpoint}); "
            "pass another --expdir, or delete that folder to retrain"
        )
    total = preset.budget(TASK).steps
    if not records.is_evaluated(expdir):
        with tqdm(total=total, desc=f"KS {adapter} on {upstream}", unit="step", dynamic_ncols=True) as bar:

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
    datarc = {key.split(".", 1)[1]: str(data / folder) for key, folder in TASK.data_keys.items()}
    clips = sum(1 for entry in TASK.list_audio(datarc) if isinstance(entry, Entry) and entry.split == "test")
    summary = {
        "adapter": adapter,
        "test_accuracy": metrics["acc"],
        "test_clips": clips,
        "chance": 1 / len(CLASSES),
        "trainable_upstream": trainable["upstream"],
        "upstream_params": upstream_params,
        "trainable_share": trainable["upstream"] / upstream_params,
        "trainable_total": trainable["total"],
        "wall_time_s": round(time.time() - started, 1),
    }
    print(
        f"\nKS {split} accuracy: {100 * summary['test_accuracy']:.1f}% on {clips} clips "
        f"(one clip is {100 / clips:.2f} points; chance {100 * summary['chance']:.1f}%), "
        f"{total} steps of {adapter} on {upstream}\n"
        f"trainable: {trainable['upstream']:,} upstream parameters = {100 * summary['trainable_share']:.2f}% of the "
        f"upstream's {upstream_params:,}; with featurizer and head {trainable['total']:,}"
    )
    table = {row["method"]: row["scores"]["ks"] for row in shipped if "ks" in row["scores"]}
    if table:
        print("the shipped table on this checkpoint, KS test accuracy (docs/leaderboard.md):")
        for method in (REFERENCES[0], adapter, REFERENCES[1]):
            if method in table and table[method].get("value") is not None:
                score = table[method]
                spread = f" ± {100 * score['std']:.1f}" if score.get("std") is not None else ""
                rate = f" at lr {score['lr']:g}" if score.get("lr") is not None else ""
                print(f"  {method:<10} {100 * score['value']:5.1f}{spread}% over {score['n']} seed(s){rate}")
    print(f"experiment: {expdir} ({summary['wall_time_s']:.0f} s)")
    return summary
