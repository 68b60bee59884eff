"""``results.json``: what a leaderboard needs from one experiment. Metrics are captured at the source -
every scalar a recipe's ``log_records`` writes to TensorBoard passes through ``MetricTap``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

RESULTS_NAME = "results.json"


class MetricTap:
    """A TensorBoard writer stand-in that forwards to the real one and remembers evaluation scalars."""

    def __init__(self, writer: Any | None) -> None:
        self.writer = writer  # None: remember only (standalone evaluation writes no TensorBoard log)
        self.history: list[dict[str, Any]] = []

    def add_scalar(self, tag: str, value: float, global_step: int | None = None, **kwargs: Any) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag, value, global_step=global_step, **kwargs)
        split, metric = split_tag(tag)
        if split != "train":
            self.history.append({"step": global_step, "split": split, "metric": metric, "value": float(value)})

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def latest(self) -> dict[str, dict[str, float]]:
        """``{split: {metric: value}}`` of the last evaluation of each split."""
        metrics: dict[str, dict[str, float]] = {}
        for entry in self.history:
            metrics.setdefault(entry["split"], {})[entry["metric"]] = entry["value"]
        return metrics


def restore_history(tap: MetricTap, expdir: str | Path, step: int) -> list[dict[str, Any]]:
    """On resume: put the evaluations of earlier sessions (up to ``step``) back into ``tap`` and return their
    training-loss curve, so results.json describes the whole run."""
    path = Path(expdir, RESULTS_NAME)
    earlier = json.loads(path.read_text()).get("train", {}) if path.is_file() else {}
    tap.history = [entry for entry in earlier.get("history", []) if entry["step"] <= step]
    return [entry for entry in earlier.get("train_loss", []) if entry["step"] <= step]


def average(expdirs: list[str | Path]) -> dict[str, Any]:
    """Mean of each split/metric over experiments, e.g. the five IEMOCAP folds of ER (SUPERB's protocol)."""
    runs = [json.loads(Path(d, RESULTS_NAME).read_text()) for d in expdirs]
    sums: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        for split, values in run.get("metrics", {}).items():
            for metric, value in values.items():
                sums.setdefault(split, {}).setdefault(metric, []).append(value)
    return {
        "experiments": [str(d) for d in expdirs],
        "metrics": {
            split: {metric: sum(v) / len(v) for metric, v in values.items() if len(v) == len(runs)}
            for split, values in sums.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m effspeech.trainer.results DIR...``: print (and with --out, write) the averaged metrics."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m effspeech.trainer.results", description=main.__doc__)
    parser.add_argument("expdirs", nargs="+", help="experiment directories holding results.json")
    parser.add_argument("--out", help="also write the average to this JSON file")
    args = parser.parse_args(argv)
    text = json.dumps(average(args.expdirs), indent=2) + "\n"
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text)
    return 0


def split_tag(tag: str) -> tuple[str, str]:
    """``speech_commands/dev-acc`` -> (dev, acc); ``asr/test-clean-wer`` -> (test-clean, wer)."""
    name = tag.rsplit("/", 1)[-1]
    split, _, metric = name.rpartition("-")
    return (split or "train"), metric


def update(expdir: str | Path, section: str, entry: dict[str, Any], common: dict[str, Any]) -> Path:
    """Merge one run (``section`` = train/evaluate) into ``<expdir>/results.json``; ``metrics`` at the top level
    holds the newest value of every split/metric over all runs."""
    path = Path(expdir, RESULTS_NAME)
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.update(common)
    results[section] = entry
    merged = results.get("metrics", {})
    for split, values in entry.get("metrics", {}).items():
        merged.setdefault(split, {}).update(values)
    results["metrics"] = merged
    tmp = path.with_name(f".{RESULTS_NAME}.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
