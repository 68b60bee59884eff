"""Embedded default upstreams: what ``make demo`` and the offline leaderboard presets run on.

``hubert_mini`` is the small HuBERT pretrained on Mini-SUPERB by ``effspeech pretrain`` and shipped in
the package (docs/hubert_mini.md). The other families' defaults are their tiny random architectures,
built once (seed 0, deterministic) into the cache directory, as is ``hubert_mini`` in a checkout
that lacks the shipped file."""

from __future__ import annotations

import os
from pathlib import Path

from effspeech.checkpoints import make_checkpoint

PACKAGE_ASSETS = Path(__file__).parent / "assets"

# upstream entry -> embedded checkpoint name
DEFAULT_FOR_UPSTREAM = {
    "hubert_adapter": "hubert_tiny",
    "wav2vec2_adapter": "wav2vec2_tiny",
    "wavlm_adapter": "wavlm_tiny",
    "hubert_mini_adapter": "hubert_mini",
}


def cache_dir() -> Path:
    """``$EFFSPEECH_CACHE``, else ``~/.cache/effspeech``."""
    return Path(os.environ.get("EFFSPEECH_CACHE", Path.home() / ".cache" / "effspeech"))


def checkpoint_path(name: str) -> Path:
    """The file of an embedded checkpoint: shipped in the package, or built once into the cache."""
    shipped = PACKAGE_ASSETS / f"{name}.pt"
    if shipped.is_file():
        return shipped
    built = cache_dir() / "checkpoints" / f"{name}-seed0.pt"
    if not built.is_file():
        partial = built.with_suffix(f".partial{os.getpid()}")
        make_checkpoint(name, 0, partial)
        os.replace(partial, built)  # concurrent builders each write their own file; the last rename wins
    return built


def default_checkpoint(upstream: str) -> Path:
    """The embedded checkpoint of an upstream entry such as ``hubert_adapter``."""
    if upstream not in DEFAULT_FOR_UPSTREAM:
        raise ValueError(f"no embedded checkpoint for {upstream!r}; valid: {', '.join(DEFAULT_FOR_UPSTREAM)}")
    return checkpoint_path(DEFAULT_FOR_UPSTREAM[upstream])
