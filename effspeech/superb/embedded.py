"""Embedded upstream checkpoints: what ``make demo`` and the offline leaderboard presets run on, so that
nothing is downloaded.

``hubert_mini`` is the small HuBERT pretrained on Mini-SUPERB by ``effspeech pretrain`` and shipped in
the package (docs/hubert_mini.md). The other names are tiny random architectures, built once (seed 0,
deterministic) into the cache directory, as is ``hubert_mini`` in a checkout that lacks the shipped file."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from effspeech.superb.random_upstream import make_checkpoint
from effspeech.superb.transformers_upstream import ARCHS as TRANSFORMERS_ARCHS
from effspeech.superb.transformers_upstream import make_transformers_checkpoint

PACKAGE_ASSETS = Path(__file__).resolve().parents[1] / "assets"


def cache_dir() -> Path:
    """``$EFFSPEECH_CACHE``, else ``~/.cache/effspeech``."""
    return Path(os.environ.get("EFFSPEECH_CACHE", Path.home() / ".cache" / "effspeech"))


def embedded_file(name: str) -> Path:
    """The file of an embedded checkpoint: shipped in the package, or built once into the cache (a
    directory for a transformers architecture)."""
    shipped = PACKAGE_ASSETS / f"{name}.pt"
    if shipped.is_file():
        return shipped
    if name in TRANSFORMERS_ARCHS:
        built = cache_dir() / "checkpoints" / f"{name}-seed0"
        if not built.is_dir():
            building = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=ensure_dir(built.parent)))
            make_transformers_checkpoint(name, 0, building)
            try:
                building.rename(built)  # complete or absent; a concurrent builder's copy may have won
            except OSError:
                shutil.rmtree(building)
        return built
    built = cache_dir() / "checkpoints" / f"{name}-seed0.pt"
    if not built.is_file():
        make_checkpoint(name, 0, built)  # written atomically: of concurrent builders the last rename wins
    return built


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
