"""The ways a downstream run can tune an upstream, as the leaderboard and the benchmark compare them: the
weighted-sum baseline on a frozen upstream (``none``: ``--adapter none``), S3PRL's fine-tuning
(``finetune``: ``-f``) and every registered adapter method, plugins included, in the registry's stable
order. ``all`` in a ``--methods`` list stands for all of them."""

from __future__ import annotations

from effspeech.registry import registered_adapters

BASELINES = ("none", "finetune")
ALL = "all"


def all_methods() -> list[str]:
    return [*BASELINES, *registered_adapters()]


def expand_all(names: list[str]) -> list[str]:
    """``names`` with ``all`` replaced by every method (each name once, in the order given)."""
    expanded: list[str] = []
    for name in names:
        for method in all_methods() if name == ALL else [name]:
            if method not in expanded:
                expanded.append(method)
    return expanded
