"""``effspeech demo`` (``make demo``): the whole pipeline in minutes on CPU. Generate Mini-SUPERB tiny,
train Houlsby adapters on keyword spotting over the embedded upstream, evaluate the best checkpoint on
the test set, and say what was trained."""

from __future__ import annotations

import json
import time
from pathlib import Path

from effspeech.leaderboard.execute import best_checkpoint, file_digest
from effspeech.report import count_unique
from effspeech.synth.cache import cached_corpus

CLASSES = 12  # Speech Commands v0.01's ten words, _unknown_ and _silence_
# Few steps at rates above SUPERB's (meant for 200k steps): the head and adapters must move in minutes.
OVERRIDES = ",,".join(
    [
        "config.runner.total_steps={steps}",
        "config.runner.eval_step={every}",
        "config.runner.save_step={every}",
        "config.runner.log_step=20",
        "config.optimizer.lr=1.0e-3",
        "config.downstream_expert.datarc.batch_size=8",
        "config.downstream_expert.datarc.num_workers=0",
    ]
)


UPSTREAM_RECORD = "upstream.sha256"


def check_upstream(expdir: Path, checkpoint: Path) -> None:
    """Resume only on the upstream the experiment started with: a demo folder trained on an older
    embedded checkpoint would otherwise be evaluated on the new one and report nonsense."""
    digest = file_digest(checkpoint)
    record = expdir / UPSTREAM_RECORD
    started = any(expdir.glob("states-*.ckpt"))
    recorded = record.read_text().strip() if record.is_file() else None
    if started and recorded != digest:
        raise SystemExit(
            f"effspeech demo: {expdir} was trained on another upstream checkpoint "
            f"({recorded or 'not recorded'}; now {checkpoint} has {digest}). "
            "Pass another --expdir, or delete that folder to retrain."
        )
    expdir.mkdir(parents=True, exist_ok=True)
    record.write_text(digest + "\n")


def run_demo(upstream: str, adapter: str, steps: int, expdir: Path, jobs: int) -> dict:
    from effspeech.assets import default_checkpoint
    from effspeech.trainer.main import run
    from upstream_adapters import ENTRIES

    started = time.time()
    checkpoint = str(default_checkpoint(upstream))
    check_upstream(expdir, Path(checkpoint))
    data = cached_corpus("tiny", seed=0, jobs=jobs)
    print(f"data: Mini-SUPERB tiny at {data} ({time.time() - started:.0f} s)")
    overrides = OVERRIDES.format(steps=steps, every=max(1, steps // 4))
    common = [
        "-u",
        upstream,
        "-k",
        checkpoint,
        "-d",
        "ks",
        "--adapter",
        adapter,
        "-p",
        str(expdir),
        "--data-root",
        str(data),
    ]
    run(["-m", "train", *common, "-o", overrides, "-a"])
    run(["-m", "evaluate", "-e", str(expdir / best_checkpoint(expdir))])

    results = json.loads((expdir / "results.json").read_text())
    evaluation = results["evaluate"]
    upstream_params = count_unique(ENTRIES[upstream](ckpt=checkpoint))
    trainable = results["trainable_params"]
    summary = {
        "test_accuracy": evaluation["metrics"][evaluation["split"]]["acc"],
        "chance": 1 / CLASSES,
        "trainable_upstream": trainable["upstream"],
        "upstream_params": upstream_params,
        "trainable_share": trainable["upstream"] / upstream_params,
        "trainable_total": trainable["total"],
        "wall_time_s": round(time.time() - started, 1),
    }
    print(
        f"\nKS test accuracy: {100 * summary['test_accuracy']:.1f}% (chance {100 / CLASSES:.1f}%), "
        f"{steps} steps of {adapter} on {upstream}\n"
        f"trainable: {trainable['upstream']:,} adapter parameters = {100 * summary['trainable_share']:.2f}% of the "
        f"upstream's {upstream_params:,}; with featurizer and head {trainable['total']:,}\n"
        f"experiment: {expdir} ({summary['wall_time_s']:.0f} s)"
    )
    return summary


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="Mini-SUPERB KS with Houlsby adapters on the embedded upstream")
    parser.add_argument("-u", "--upstream", default="hubert_mini_adapter", help="an entry with an embedded default")
    parser.add_argument("--adapter", default="houlsby")
    parser.add_argument("--steps", type=int, default=240)
    parser.add_argument("--expdir", default="result/downstream/demo_ks_houlsby")
    parser.add_argument("--jobs", type=int, default=2, help="processes for the speech generator")
    parser.set_defaults(
        func=lambda args: run_demo(args.upstream, args.adapter, args.steps, Path(args.expdir), args.jobs) and 0
    )
