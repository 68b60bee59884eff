"""Collect the cells' ``results.json`` into the leaderboard: one row per upstream x method, each task's
test metric in SUPERB's direction, trainable parameters, and the mean score relative to fine-tuning.

With several learning rates, a task reports the rate with the best mean dev score (SUPERB's protocol:
choose on dev, report test); with several seeds, the mean and standard deviation of the test metric over
the seeds at that rate. Every run's dev and test scores stay in the JSON and in ``leaderboard_runs.csv``."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean, stdev

from effspeech.superb import records
from effspeech.superb.tasks import by_alias
from effspeech.tools.leaderboard.execute import checkpoint_digest
from effspeech.tools.leaderboard.grid import Cell
from effspeech.tools.leaderboard.status import cell_state


@dataclass
class Score:
    """One task of one row: a value, or why there is none (failed, missing)."""

    value: float | None = None  # the mean over seeds of the test metric, at the chosen rate
    status: str = "missing"
    trainable_total: int | None = None
    std: float | None = None  # over seeds (None: one seed)
    n: int = 1  # seeds
    lr: float | None = None  # the rate chosen on dev (None: one rate, the preset's or the config's)
    runs: list[dict] = field(default_factory=list)  # every (lr, seed): its mean dev and test metric over folds

    def text(self) -> str:
        if self.value is None:
            return self.status
        spread = f" ± {100 * self.std:.2f} ({self.n})" if self.std is not None else ""
        return f"{100 * self.value:.2f}{spread}" + (f" @{self.lr:g}" if self.lr is not None else "")


@dataclass
class Row:
    upstream: str
    method: str
    trainable_upstream: int | None = None
    upstream_params: int | None = None
    scores: dict[str, Score] = field(default_factory=dict)
    relative_to_finetune: float | None = None
    relative_se: float | None = None  # its standard error from the seed spread of both rows (None: one seed)
    upstream_sha256: list[str] = field(default_factory=list)  # the checkpoints its cells were trained on

    @property
    def share(self) -> float | None:
        if self.trainable_upstream is None or not self.upstream_params:
            return None
        return self.trainable_upstream / self.upstream_params


SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "hubert_mini.leaderboard.json"


def shipped_rows(upstream: str, digest: str) -> list[dict]:
    """The rows of the table docs/leaderboard.md shows (its ``leaderboard.json``, shipped as an asset)
    measured on ``upstream`` at the checkpoint with SHA-256 ``digest``: none for any other checkpoint."""
    rows = json.loads(SHIPPED.read_text()) if SHIPPED.is_file() else []
    return [row for row in rows if row["upstream"] == upstream and row.get("upstream_sha256") == [digest]]


def upstream_size(upstream: str, checkpoint: str | None) -> int:
    """Parameters of an upstream as loaded, before any adapter: the denominator of the share."""
    from effspeech.count import count_parameters
    from effspeech.superb.upstream import load_upstream

    return count_parameters(load_upstream(upstream, checkpoint)[0])


def test_metric(results: dict, alias: str) -> float | None:
    """The cell's test metric as a fraction (S3PRL's ASR logs WER in percent, the others fractions)."""
    task = by_alias(alias)
    value = records.evaluation(results)[1].get(task.metric)
    return value / 100 if value is not None and task.in_percent else value


def dev_metric(results: dict, alias: str) -> float | None:
    """The cell's best dev score over its evaluations (what chose its best-dev checkpoint), as a fraction."""
    task = by_alias(alias)
    history = results.get("train", {}).get("history", [])
    values = [e["value"] for e in history if e["metric"] == task.metric and e["split"] != task.test_split]
    if not values:
        return None
    best = max(values) if task.higher_is_better else min(values)
    return best / 100 if task.in_percent else best


def task_score(cells: list[Cell], out: Path) -> tuple[Score, dict]:
    """The task's score over its cells: each run (a rate and a seed) the mean of its folds (ER); the rate
    with the best mean dev score over seeds; the test metric's mean and spread over seeds at that rate.
    Any unfinished cell spoils it."""
    grouped: dict[tuple, list[Cell]] = {}
    for cell in cells:
        grouped.setdefault((cell.lr, cell.seed), []).append(cell)
    runs, results = [], {}
    for (lr, seed), fold_cells in grouped.items():
        tests, devs = [], []
        for cell in fold_cells:
            expdir = cell.expdir(out)
            results = records.read_results(expdir)
            value = test_metric(results, cell.task)
            if value is None:
                state = cell_state(expdir)
                return Score(status="failed" if state in ("failed", "interrupted") else "missing"), results
            tests.append(value)
            devs.append(dev_metric(results, cell.task))
        dev = mean(devs) if None not in devs else None
        runs.append({"lr": lr, "seed": seed, "dev": dev, "test": mean(tests)})
    task = by_alias(cells[0].task)
    rates = list(dict.fromkeys(run["lr"] for run in runs))
    chosen = rates[0]
    if len(rates) > 1:
        devs = {rate: [run["dev"] for run in runs if run["lr"] == rate] for rate in rates}
        scored = {rate: mean(values) for rate, values in devs.items() if None not in values}
        if not scored:
            return Score(status="no dev", runs=runs), results
        chosen = (max if task.higher_is_better else min)(scored, key=scored.get)
    tests = [run["test"] for run in runs if run["lr"] == chosen]
    total = records.trainable_params(results).get("total")
    spread = stdev(tests) if len(tests) > 1 else None
    return Score(mean(tests), "done", total, spread, len(tests), chosen, runs), results


def relative(score: float, finetune: float, task: str) -> float | None:
    """score / fine-tuning score, on accuracy-like scales (error rates become 1 - error); None where
    fine-tuning scores nothing (say a WER of 100 %), as no ratio to nothing means anything."""
    if not by_alias(task).higher_is_better:
        score, finetune = 1 - score, 1 - finetune
    return score / finetune if finetune > 0 else None


def build_rows(cells: list[Cell], out: Path, upstream_params: dict[str, int]) -> list[Row]:
    grouped: dict[tuple[str, str], dict[str, list[Cell]]] = {}
    for cell in cells:
        grouped.setdefault((cell.upstream, cell.method), {}).setdefault(cell.task, []).append(cell)
    rows = []
    for (upstream, method), tasks in grouped.items():
        row = Row(upstream, method, upstream_params=upstream_params.get(upstream))
        for task, task_cells in tasks.items():
            row.scores[task], results = task_score(task_cells, out)
            for cell in task_cells:
                digest = checkpoint_digest(cell.expdir(out))
                if digest and digest not in row.upstream_sha256:
                    row.upstream_sha256.append(digest)
            if row.trainable_upstream is None and records.trainable_params(results):
                row.trainable_upstream = records.trainable_params(results).get("upstream")
        rows.append(row)
    for row in rows:
        reference = next((r for r in rows if r.upstream == row.upstream and r.method == "finetune"), None)
        if reference is None:
            continue
        pairs = [
            (score, reference.scores[task], task)
            for task, score in row.scores.items()
            if score.value is not None and task in reference.scores and reference.scores[task].value is not None
        ]
        pairs = [(a, b, task) for a, b, task in pairs if relative(a.value, b.value, task) is not None]
        if pairs:
            row.relative_to_finetune = mean(relative(ours.value, theirs.value, task) for ours, theirs, task in pairs)
            errors = [relative_error(ours, theirs, task) for ours, theirs, task in pairs]
            if None not in errors:
                row.relative_se = math.sqrt(sum(error**2 for error in errors)) / len(errors)
    return rows


def relative_error(score: Score, finetune: Score, task: str) -> float | None:
    """The standard error of ``score / finetune`` from each one's seed spread (first-order propagation of
    std / sqrt(n)); None unless both ran several seeds."""
    if score.std is None or finetune.std is None:
        return None
    ratio = relative(score.value, finetune.value, task)
    ours = score.value if by_alias(task).higher_is_better else 1 - score.value
    theirs = finetune.value if by_alias(task).higher_is_better else 1 - finetune.value
    if ours <= 0:
        return None
    return ratio * math.hypot(score.std / math.sqrt(score.n) / ours, finetune.std / math.sqrt(finetune.n) / theirs)


def _header(tasks: list[str]) -> list[str]:
    arrows = {True: "↑", False: "↓"}
    metric_columns = [
        f"{alias.upper()} {by_alias(alias).metric.upper()} {arrows[by_alias(alias).higher_is_better]}"
        for alias in tasks
    ]
    return ["upstream", "method", "trainable upstream params", "share of upstream %", *metric_columns, "rel. to FT"]


def _cells(row: Row, tasks: list[str]) -> list[str]:
    return [
        row.upstream,
        row.method,
        "" if row.trainable_upstream is None else str(row.trainable_upstream),
        "" if row.share is None else f"{100 * row.share:.4f}",
        *[row.scores.get(task, Score()).text() for task in tasks],
        "" if row.relative_to_finetune is None else f"{row.relative_to_finetune:.3f}" + _spread(row.relative_se),
    ]


def _spread(error: float | None) -> str:
    return "" if error is None else f" ± {error:.3f}"


def write_outputs(rows: list[Row], tasks: list[str], out: Path) -> list[Path]:
    header = _header(tasks)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cells(row, tasks)) + " |" for row in rows]
    note = (
        "\nMetrics in % on each task's test split (ER: mean of the IEMOCAP folds). "
        "rel. to FT: mean over tasks of score / fine-tuning score (error rates as 1 - error; "
        "a task where fine-tuning scores 0 on that scale is left out).\n"
    )
    if any(score.n > 1 or score.lr is not None for row in rows for score in row.scores.values()):
        note += (
            "mean ± std (number of seeds) over training seeds, at the learning rate (@) with the best mean dev score; "
            "rel. to FT ± its standard error from the seed spreads of the row and of fine-tuning.\n"
        )
    paths = [out / "leaderboard.md", out / "leaderboard.csv", out / "leaderboard.json", out / "leaderboard_runs.csv"]
    paths[0].write_text("\n".join(lines) + "\n" + note)
    with open(paths[1], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(_cells(row, tasks) for row in rows)
    records = [
        {
            "upstream": row.upstream,
            "method": row.method,
            "trainable_upstream_params": row.trainable_upstream,
            "upstream_params": row.upstream_params,
            "upstream_sha256": row.upstream_sha256,
            "share_of_upstream": row.share,
            "scores": {
                task: {
                    "metric": by_alias(task).metric,
                    "higher_is_better": by_alias(task).higher_is_better,
                    "value": score.value,
                    "status": score.status,
                    "trainable_total": score.trainable_total,
                    "std": score.std,
                    "n": score.n,
                    "lr": score.lr,
                    "runs": score.runs,
                }
                for task, score in row.scores.items()
            },
            "relative_to_finetune": row.relative_to_finetune,
            "relative_to_finetune_se": row.relative_se,
        }
        for row in rows
    ]
    paths[2].write_text(json.dumps(records, indent=2) + "\n")
    with open(paths[3], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["upstream", "method", "task", "lr", "seed", "dev", "test"])
        for row in rows:
            for task, score in row.scores.items():
                for run in score.runs:
                    writer.writerow([row.upstream, row.method, task, run["lr"], run["seed"], run["dev"], run["test"]])
    return paths
