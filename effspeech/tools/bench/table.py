"""Rounds of per-process results -> one row per method: pooled medians, ratios against the frozen forward F
and against full fine-tuning; printed as a table and written as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from effspeech.tools.bench.measure import median
from effspeech.tools.bench.setups import FINETUNE

SAME_IN_EVERY_RUN = ("cut", "trainable_params", "trainable_with_grad", "head_params", "ckpt_bytes", "frames", "threads")
CHECKS = ("infer_overhead", "merged_overhead", "output_delta", "cached_over_uncached")


def aggregate(runs: list[dict], context: dict) -> list[dict]:
    """One row per (method, compiled, cached): times pooled over rounds, peak memory the worst round's."""
    groups: dict[tuple[str, bool, bool], list[dict]] = {}
    for run in runs:
        groups.setdefault((run["method"], run.get("compiled", False), run.get("cached", False)), []).append(run)
    rows = []
    for (method, compiled, cached), group in groups.items():
        ok = [run for run in group if "error" not in run]
        row = {"method": method, "compiled": compiled, "cached": cached, **context, "rounds": len(ok)}
        if not ok:
            rows.append({**row, "error": group[-1]["error"]})
            continue
        first = ok[0]
        row.update({key: first[key] for key in SAME_IN_EVERY_RUN})
        steps = [time for run in ok for time in run["step_times"]]
        forwards = [time for run in ok for time in run["forward_times"]]
        row.update(
            step_s=median(steps),
            forward_s=median(forwards),
            step_s_per_round=[run["step_s"] for run in ok],
            forward_s_per_round=[run["forward_s"] for run in ok],
            step_over_forward=median([ratio for run in ok for ratio in run["step_over_forward"]]),
            first_step_s=max(run["first_step_s"] for run in ok),
            peak_mem_bytes=max(run["peak_mem_bytes"] for run in ok),
            peak_mem_resettable=all(run["peak_mem_resettable"] for run in ok),
        )
        if first.get("load_peak_rss_bytes") is not None:
            row["load_peak_rss_bytes"] = max(run["load_peak_rss_bytes"] for run in ok)
        for key in CHECKS:
            if key in first:
                row[key] = median([run[key] for run in ok])
        rows.append(row)
    _add_finetune_ratios(rows)
    return rows


def _add_finetune_ratios(rows: list[dict]) -> None:
    """Against uncached ``finetune`` (eager rows against eager, compiled against compiled). The step ratio is taken
    between the F-normalised steps, so load that differs between the two processes cancels."""
    for compiled in (False, True):
        reference = next(
            (r for r in rows if r["method"] == FINETUNE and r["compiled"] == compiled and not r["cached"]), None
        )
        if reference is None or "error" in reference:
            continue
        for row in rows:
            if row["compiled"] == compiled and "error" not in row:
                row["step_over_finetune"] = row["step_over_forward"] / reference["step_over_forward"]
                row["peak_over_finetune"] = row["peak_mem_bytes"] / reference["peak_mem_bytes"]
                row["ckpt_over_finetune"] = row["ckpt_bytes"] / reference["ckpt_bytes"]


COLUMNS = (
    # header, key, format
    ("method", "method", "{}"),
    ("trainable", "trainable_params", "{:,}"),
    ("cut", "cut", "{}"),
    ("step s", "step_s", "{:.3f}"),
    ("F s", "forward_s", "{:.3f}"),
    ("step/F", "step_over_forward", "{:.2f}"),
    ("step/FT", "step_over_finetune", "{:.2f}"),
    ("cached/uncached", "cached_over_uncached", "{:.2f}"),
    ("peak MB", "peak_mem_bytes", "MB"),
    ("peak/FT", "peak_over_finetune", "{:.2f}"),
    ("ckpt MB", "ckpt_bytes", "MB"),
    ("ckpt/FT", "ckpt_over_finetune", "{:.4f}"),
    ("infer +%", "infer_overhead", "%"),
    ("merged +%", "merged_overhead", "%"),
    ("out delta", "output_delta", "{:.3g}"),
)


def _cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    if fmt == "MB":
        return f"{value / 1e6:.2f}" if value < 1e7 else f"{value / 1e6:.0f}"
    if fmt == "%":
        return f"{100 * value:+.1f}"
    return fmt.format(value)


def format_table(rows: list[dict]) -> str:
    """A markdown table; a compiled row's method is suffixed ``+compile``, a cached one's ``+cache`` (its cut
    column says what was cached; ``-``: nothing below that method is frozen); failed runs show their error."""
    lines = ["| " + " | ".join(header for header, _, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        suffix = ("+compile" if row["compiled"] else "") + ("+cache" if row.get("cached") else "")
        shown = {**row, "method": row["method"] + suffix}
        if "error" in row:
            lines.append(f"| {shown['method']} | error: {row['error'].splitlines()[-1]} |")
            continue
        lines.append("| " + " | ".join(_cell(shown, key, fmt) for _, key, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def write_json(rows: list[dict], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2) + "\n")
