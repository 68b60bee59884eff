"""``pareto.png``: per task, score against trainable parameters (log scale), one point per method."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from effspeech.superb.tasks import by_alias  # noqa: E402
from effspeech.tools.leaderboard.table import Row  # noqa: E402


def plot_pareto(rows: list[Row], tasks: list[str], path: Path) -> Path:
    columns = min(3, len(tasks))
    lines = (len(tasks) + columns - 1) // columns
    figure, axes = plt.subplots(lines, columns, figsize=(5 * columns, 4 * lines), squeeze=False)
    for axis, task in zip(axes.flat, tasks):
        for row in rows:
            score = row.scores.get(task)
            if score is None or score.value is None or not score.trainable_total:
                continue
            spread = None if score.std is None else 100 * score.std  # over seeds
            axis.errorbar(score.trainable_total, 100 * score.value, yerr=spread, fmt="o", markersize=5, capsize=3)
            label = row.method if len({r.upstream for r in rows}) == 1 else f"{row.upstream}:{row.method}"
            axis.annotate(label, (score.trainable_total, 100 * score.value), fontsize=8)
        metric = by_alias(task)
        direction = "higher is better" if metric.higher_is_better else "lower is better"
        axis.set(xscale="log", title=task.upper(), xlabel="trainable parameters (upstream + head)")
        axis.set_ylabel(f"{metric.metric.upper()} % ({direction})")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(tasks) :]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
