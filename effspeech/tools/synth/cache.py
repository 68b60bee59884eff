"""Generated corpora kept in the cache directory, so the demo and the leaderboard make each one once."""

from __future__ import annotations

from pathlib import Path

from effspeech.superb.embedded import cache_dir

COMPLETE = ".complete"  # written last, in the corpus and in each task folder: a half-written one is made again


def corpus_root(preset: str, seed: int = 0) -> Path:
    return cache_dir() / "mini-superb" / f"{preset}-seed{seed}"


def cached_corpus(preset: str, seed: int = 0, jobs: int = 1, tasks: list[str] | None = None) -> Path:
    """The Mini-SUPERB corpus of ``preset`` and ``seed``, generated on first use: all six tasks, or only
    ``tasks`` (a subset is byte-identical to the same tasks of the whole corpus, so the rest can follow)."""
    from effspeech.tools.synth.mini_superb import GENERATORS, generate

    root = corpus_root(preset, seed)
    if (root / COMPLETE).is_file():
        return root
    missing = [task for task in tasks or GENERATORS if not (root / task / COMPLETE).is_file()]
    if missing:
        generate(preset, root, seed=seed, jobs=jobs, tasks=missing)
        for task in missing:
            (root / task / COMPLETE).write_text("ok\n")
    if all((root / task / COMPLETE).is_file() for task in GENERATORS):
        (root / COMPLETE).write_text("ok\n")
    return root
