"""Generated corpora kept in the cache directory, so the demo and the leaderboard make each one once."""

from __future__ import annotations

from pathlib import Path

from effspeech.superb.embedded import cache_dir

COMPLETE = ".complete"  # written last: a half-written corpus (killed generator) is made again


def corpus_root(preset: str, seed: int = 0) -> Path:
    return cache_dir() / "mini-superb" / f"{preset}-seed{seed}"


def cached_corpus(preset: str, seed: int = 0, jobs: int = 1) -> Path:
    """The Mini-SUPERB corpus of ``preset`` and ``seed``, generated on first use."""
    from effspeech.tools.synth.mini_superb import generate

    root = corpus_root(preset, seed)
    if not (root / COMPLETE).is_file():
        generate(preset, root, seed=seed, jobs=jobs)
        (root / COMPLETE).write_text("ok\n")
    return root
