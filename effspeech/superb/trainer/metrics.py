"""Metrics captured at the source: every scalar a recipe's ``log_records`` writes to TensorBoard passes
through ``MetricTap``, which remembers the evaluation scalars for results.json."""

from __future__ import annotations

from typing import Any


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


def split_tag(tag: str) -> tuple[str, str]:
    """``speech_commands/dev-acc`` -> (dev, acc); ``asr/test-clean-wer`` -> (test-clean, wer)."""
    name = tag.rsplit("/", 1)[-1]
    split, _, metric = name.rpartition("-")
    return (split or "train"), metric
