"""The pretraining audio: only the train splits of a Mini-SUPERB root, plus optional unlabeled folders.

Dev and test clips of every task stay out, so downstream scores never rest on audio the upstream
has seen. ER (IEMOCAP) is left out entirely: S3PRL's five ER folds each test on another session, so
every session is test material of one fold. The synthetic corpora share one pool of voices across
tasks, so a voice (not a clip) heard here may still occur in another task's test split."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch

from effspeech.errors import ConfigError
from effspeech.tools.pretrain.features import SAMPLE_RATE, WINDOW

AUDIO_SUFFIXES = (".wav", ".flac")


def _ks(root: Path) -> list[Path]:
    """Speech Commands minus validation_list.txt and testing_list.txt; no background noise."""
    base = root / "ks" / "speech_commands_v0.01"
    held_out = set()
    for listing in ("validation_list.txt", "testing_list.txt"):
        if (base / listing).is_file():
            held_out.update((base / listing).read_text().split())
    return [
        path
        for path in sorted(base.glob("*/*.wav"))
        if path.parent.name != "_background_noise_" and f"{path.parent.name}/{path.name}" not in held_out
    ]


def _ic(root: Path) -> list[Path]:
    """Fluent Speech Commands: the rows of data/train_data.csv."""
    base = root / "ic" / "fluent_speech_commands_dataset"
    table = base / "data" / "train_data.csv"
    if not table.is_file():
        return []
    with table.open(newline="") as handle:
        return [base / row["path"] for row in csv.DictReader(handle)]


def _sid(root: Path) -> list[Path]:
    """VoxCeleb1 identification: split 1 of iden_split.txt, looked up under */wav/ as S3PRL does."""
    base = root / "sid" / "VoxCeleb1"
    split_file = base / "iden_split.txt"
    if not split_file.is_file():
        return []
    rows = (line.split() for line in split_file.read_text().splitlines() if line.strip())
    found = (next(iter(sorted(base.glob(f"*/wav/{rel}"))), None) for split, rel in rows if split == "1")
    return [path for path in found if path is not None]


def _asr(root: Path) -> list[Path]:
    """LibriSpeech train-* subsets (train-clean-100 in Mini-SUPERB)."""
    return sorted((root / "asr" / "LibriSpeech").glob("train-*/*/*/*.flac"))


def _sd(root: Path) -> list[Path]:
    """The recordings of the Kaldi train dir's wav.scp (plain paths, as Mini-SUPERB writes them)."""
    scp = root / "sd" / "train" / "wav.scp"
    if not scp.is_file():
        return []
    return [Path(line.split(maxsplit=1)[1]) for line in scp.read_text().splitlines() if line.strip()]


TRAIN_SPLITS: dict[str, Callable[[Path], list[Path]]] = {"ks": _ks, "ic": _ic, "sid": _sid, "asr": _asr, "sd": _sd}


def training_files(root: str | Path, unlabeled: Iterable[str | Path] = ()) -> dict[str, list[Path]]:
    """``{source: files}``: each task's train split under ``root``, then every audio file of each
    ``unlabeled`` folder. Tasks absent from ``root`` are skipped; none at all is an error."""
    root = Path(root)
    found = {task: files for task, reader in TRAIN_SPLITS.items() if (files := reader(root))}
    if not found:
        raise ConfigError(f"no Mini-SUPERB train split ({', '.join(TRAIN_SPLITS)}) found under {root}")
    for folder in unlabeled:
        files = sorted(path for path in Path(folder).rglob("*") if path.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise ConfigError(f"no .wav or .flac files under {folder}")
        found[f"unlabeled:{folder}"] = files
    return found


@dataclass(frozen=True)
class AudioPool:
    """Files and their lengths in samples, to draw fixed-length random crops from."""

    paths: tuple[Path, ...]
    lengths: np.ndarray

    @classmethod
    def scan(cls, paths: Iterable[Path]) -> AudioPool:
        """Read each file's header; files too short for one label frame are dropped."""
        kept, lengths = [], []
        for path in paths:
            info = soundfile.info(str(path))
            if info.samplerate != SAMPLE_RATE:
                raise ConfigError(f"{path}: {info.samplerate} Hz, expected {SAMPLE_RATE}")
            if info.frames >= WINDOW:
                kept.append(path)
                lengths.append(info.frames)
        return cls(tuple(kept), np.asarray(lengths, dtype=np.int64))

    @classmethod
    def join(cls, pools: Iterable[AudioPool]) -> AudioPool:
        pools = list(pools)
        return cls(sum((pool.paths for pool in pools), ()), np.concatenate([pool.lengths for pool in pools]))

    @property
    def hours(self) -> float:
        return float(self.lengths.sum()) / SAMPLE_RATE / 3600

    def read(self, index: int, offset: int = 0, samples: int = -1) -> torch.Tensor:
        audio, _ = soundfile.read(str(self.paths[index]), start=offset, frames=samples, dtype="float32")
        return torch.from_numpy(audio if audio.ndim == 1 else audio.mean(axis=1))

    def crops(self, rng: np.random.Generator, count: int, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` random crops, zero-padded to ``samples``, and their valid lengths.

        Files are drawn with probability proportional to max(length, crop), so every second of audio
        is covered about equally often, short clips included."""
        weights = np.maximum(self.lengths, samples).astype(np.float64)
        chosen = rng.choice(len(self.paths), size=count, p=weights / weights.sum())
        batch = torch.zeros(count, samples)
        valid = torch.zeros(count, dtype=torch.long)
        for row, index in enumerate(chosen):
            offset = int(rng.integers(0, max(int(self.lengths[index]) - samples, 0) + 1))
            audio = self.read(int(index), offset, samples)
            batch[row, : len(audio)] = audio
            valid[row] = len(audio)
        return batch, valid
