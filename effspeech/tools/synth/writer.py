"""One writer for every task: audio files (WAV or FLAC by suffix), text files and meta.json."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import soundfile

from effspeech.superb.tasks import Task
from effspeech.tools.synth import espeak
from effspeech.tools.synth.audio import SAMPLE_RATE


def layout_path(task: Task, key: str) -> str:
    """Where the recipe finds a file or folder of its Mini-SUPERB corpus (``task.data_keys[key]``), relative
    to the task's own folder: the one place those paths are written is the task's module."""
    return Path(task.data_keys[key]).relative_to(task.alias).as_posix()


class Corpus:
    """A task's output folder; it counts what it writes so meta.json states measured sizes."""

    def __init__(self, root: Path, task: str, layout: str, preset: str, seed: int) -> None:
        self.root, self.task, self.layout, self.preset, self.seed = Path(root), task, layout, preset, seed
        self.files, self.seconds = 0, 0.0

    def audio(self, relpath: str | Path, samples: np.ndarray) -> Path:
        """Write 16-bit 16 kHz mono; the format follows the suffix (.wav or .flac)."""
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, samples, SAMPLE_RATE, subtype="PCM_16")
        self.files += 1
        self.seconds += samples.size / SAMPLE_RATE
        return path

    def text(self, relpath: str | Path, lines: Iterable[str]) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in lines))
        return path

    def table(self, relpath: str | Path, header: list[str], rows: Iterable[list[object]]) -> Path:
        """A CSV file (quoted where needed, Unix line ends)."""
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
        return path

    def finish(self, counts: dict[str, int], **extra: object) -> dict:
        """Write meta.json (no timestamps: the same seed must give byte-identical output)."""
        meta = {
            "task": self.task,
            "layout": self.layout,
            "preset": self.preset,
            "seed": self.seed,
            "engine": {"name": espeak.BINARY, "version": espeak.version()},
            "counts": counts,
            "audio_files": self.files,
            "hours": round(self.seconds / 3600, 4),
            **extra,
        }
        (self.root / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return meta
