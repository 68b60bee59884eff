"""Audio files as the recipes read them, and what can be wrong with one: shared by ``check-data`` (whole
files, from the lists each task's module makes) and the trainer's tapped reads (what a recipe just
read), so both name a fault the same way."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from effspeech.errors import EffspeechError

SAMPLE_RATE = 16000  # what every SUPERB upstream expects
CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped (full scale in float or int PCM)
CLIP_FRACTION = 0.001  # warn when more than this share of the samples is clipped


class BadAudioError(EffspeechError, ValueError):
    """A recording that cannot be used: unreadable, not audio, empty, not finite, or too short."""


@dataclass(frozen=True)
class Problem:
    """One fault of one file: ``error`` stops (or is skipped in) training; ``warning`` does not."""

    path: str
    severity: str  # "error" or "warning"
    what: str

    def __str__(self) -> str:
        return f"{self.severity:7s} {self.path}: {self.what}"


@dataclass(frozen=True)
class Entry:
    """One audio file a recipe reads, and the split that reads it."""

    split: str
    path: str


def label_problem(path: str | Path, label: str, known: Iterable[object]) -> Problem:
    """A file whose label the recipe would not know."""
    valid = ", ".join(sorted(map(str, known)))
    return Problem(str(path), "error", f"label {label!r} is not in the label set ({valid})")


def sample_faults(data: np.ndarray) -> list[str]:
    """Faults of decoded samples that make features wrong or the loss NaN."""
    if data.size == 0:
        return ["empty: zero samples"]
    finite = np.isfinite(data)
    if not finite.all():
        return [f"{int((~finite).sum())} NaN/inf samples"]
    return []


def inspect_file(path: str | Path) -> list[Problem]:
    """Read the whole file and report every fault: missing, unreadable, truncated, empty, NaN/inf, clipped,
    wrong sample rate, more than one channel."""
    path = str(path)
    if not Path(path).is_file():
        return [Problem(path, "error", "listed in the metadata but missing")]
    try:
        info = soundfile.info(path)
        data, _ = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile names no exception types per fault
        return [Problem(path, "error", f"unreadable: {error}")]
    found = [Problem(path, "error", fault) for fault in sample_faults(data)]
    if "should be" in info.extra_info:  # libsndfile's note when a header promises more than the file holds
        found.append(
            Problem(
                path,
                "error",
                f"truncated: header promises more data than the file holds ({info.frames} frames readable)",
            )
        )
    if info.samplerate != SAMPLE_RATE:
        found.append(Problem(path, "warning", f"sample rate {info.samplerate} Hz, not {SAMPLE_RATE}"))
    if info.channels != 1:
        found.append(Problem(path, "warning", f"{info.channels} channels, not 1"))
    if not found and data.size:
        clipped = float((np.abs(data) >= CLIP_LEVEL).mean())
        if clipped > CLIP_FRACTION:
            found.append(Problem(path, "warning", f"clipped: {clipped:.1%} of samples at full scale"))
    return found
