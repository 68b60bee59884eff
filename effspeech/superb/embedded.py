"""Embedded upstream checkpoints: what ``make demo`` and the offline leaderboard presets run on, so that
nothing is downloaded.

``hubert_mini`` is the small HuBERT pretrained on Mini-SUPERB by ``effspeech pretrain`` and shipped in
the package (docs/hubert_mini.md). The other names are tiny random architectures, built once (seed 0,
deterministic) into the cache directory, as is ``hubert_mini`` in a checkout that lacks the shipped file."""

from __future__ import annotations

import os
from pathlib import Path

from effspeech.superb.random_upstream import make_checkpoint

PACKAGE_ASSETS = Path(__file__).resolve().parents[1] / "assets"


def cache_dir() -> Path:
    """``$EFFSPEECH_CACHE``, else ``~/.cache/effspeech``."""
    return Path(os.environ.get("EFFSPEECH_CACHE", Path.home() / ".cache" / "effspeech"))


def embedded_file(name: str) -> Path:
    """The file of an embedded checkpoint: shipped in the package, or built once into the cache."""
    shipped = PACKAGE_ASSETS / f"{name}.pt"
    if shipped.is_file():
        return shipped
    built = cache_dir() / "checkpoints" / f"{name}-seed0.pt"
    if not built.is_file():
        make_checkpoint(name, 0, built)  # written atomically: of concurrent builders the last rename wins
    return built
