"""Bad audio during training never kills a run silently. One mechanism for every recipe: all six read audio
through ``soundfile.read`` (directly, or via the compat layer's ``torchaudio.load``/``apply_effects_file``),
so a tap there sees each file a recipe opens; the loader's dataset and collate are wrapped so a failing item
becomes a ``BadItem`` naming its file, and the main process stops or skips (``runner.on_bad_data``).

The tap also makes stereo and non-16 kHz audio right where the recipe would not: only speech_commands
down-mixes and resamples itself (sox effects); the others would feed 2-channel arrays or wrong-rate audio to
the upstream (ASR asserts the rate)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile
import torch
import torchaudio
from torch.utils.data import DataLoader, Dataset

from effspeech.checkdata.audio import SAMPLE_RATE, sample_faults

logger = logging.getLogger(__name__)

POLICIES = ("stop", "skip")  # runner.on_bad_data
SELF_CONVERTING = {"speech_commands"}  # recipes whose own reader down-mixes and resamples to 16 kHz

_opened: ContextVar[list[str] | None] = ContextVar("effspeech_opened", default=None)


class BadAudio(Exception):
    """A file a recipe read, and what is wrong with it."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(f"{path}: {what}")
        self.path, self.what = path, what


class BadDataError(RuntimeError):
    """Raised in the main process under ``runner.on_bad_data: stop``."""


@dataclass
class BadItem:
    """Stands in for a dataset item that failed (picklable, so it crosses DataLoader workers)."""

    index: int
    path: str
    what: str


@dataclass
class GuardedBatch:
    """A batch that lost items: the recipe's collated batch of the good ones (None if none) and the bad."""

    batch: Any
    bad: list[BadItem]


@contextlib.contextmanager
def tapped_reads(task: str) -> Iterator[None]:
    """Route ``soundfile.read`` through the checks while a run (its recipe build, training, evaluation) lasts."""
    original = soundfile.read

    def read(file: Any, *args: Any, **kwargs: Any) -> tuple[np.ndarray, int]:
        path = str(file)
        opened = _opened.get()
        if opened is not None:
            opened.append(path)
        try:
            data, rate = original(file, *args, **kwargs)
        except Exception as error:
            raise BadAudio(path, f"unreadable: {error}") from error
        faults = sample_faults(np.asarray(data))
        if faults:
            raise BadAudio(path, faults[0])
        if task in SELF_CONVERTING:
            return data, rate
        partial = bool(args) or any(kwargs.get(key) not in (None, 0, -1) for key in ("frames", "start", "stop"))
        return _to_mono_16k(path, data, rate, partial, keep_2d=kwargs.get("always_2d", False))

    soundfile.read = read
    try:
        yield
    finally:
        soundfile.read = original


def _to_mono_16k(path: str, data: np.ndarray, rate: int, partial: bool, keep_2d: bool) -> tuple[np.ndarray, int]:
    """Down-mix (to the layout a mono file gives the caller) and resample a whole file to 16 kHz, with a warning."""
    if data.ndim == 2 and data.shape[1] > 1:
        logger.warning("%s: %d channels, down-mixed to mono", path, data.shape[1])
        data = data.mean(axis=1, keepdims=keep_2d)
    if rate != SAMPLE_RATE:
        if partial:  # the recipe chose the segment's offsets in 16 kHz samples: no resampling fixes that
            raise BadAudio(path, f"sample rate {rate} Hz: this recipe reads segments at {SAMPLE_RATE} Hz offsets")
        logger.warning("%s: sample rate %d Hz, resampled to %d", path, rate, SAMPLE_RATE)
        wav = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(data.T)), rate, SAMPLE_RATE)
        data, rate = wav.T.numpy(), SAMPLE_RATE
    return data, rate


class GuardedDataset(Dataset):
    """The recipe's dataset, whose failing items come back as ``BadItem`` naming the file that failed."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        opened: list[str] = []
        token = _opened.set(opened)
        try:
            return self.dataset[index]
        except BadAudio as error:
            return BadItem(index, error.path, error.what)
        except Exception as error:  # e.g. the recipe's KeyError for a label outside its label set
            return BadItem(index, opened[-1] if opened else f"item {index}", f"{type(error).__name__}: {error}")
        finally:
            _opened.reset(token)


class GuardedCollate:
    """The recipe's collate over the good items; the bad ones travel beside the batch. A clean batch is the
    recipe's own, untouched."""

    def __init__(self, collate: Any) -> None:
        self.collate = collate

    def __call__(self, samples: list[Any]) -> Any:
        bad = [sample for sample in samples if isinstance(sample, BadItem)]
        if not bad:
            return self.collate(samples)
        good = [sample for sample in samples if not isinstance(sample, BadItem)]
        return GuardedBatch(self.collate(good) if good else None, bad)


def guarded_loader(loader: DataLoader) -> DataLoader:
    """``loader`` (same sampler, batching and workers) over the guarded dataset and collate."""
    settings = {
        "batch_size": loader.batch_size,
        "sampler": loader.sampler,
        "num_workers": loader.num_workers,
        "pin_memory": loader.pin_memory,
        "drop_last": loader.drop_last,
        "generator": loader.generator,
    }
    if loader.batch_size is None:  # a custom batch sampler: keep it
        settings = {"batch_sampler": loader.batch_sampler, "num_workers": loader.num_workers}
    return DataLoader(GuardedDataset(loader.dataset), collate_fn=GuardedCollate(loader.collate_fn), **settings)


class BadDataLog:
    """Counts skipped files for results.json and applies the policy, in the main process."""

    def __init__(self, policy: str) -> None:
        if policy not in POLICIES:
            raise ValueError(f"runner.on_bad_data must be one of {POLICIES}, got {policy!r}")
        self.policy = policy
        self.skipped = 0
        self.files: dict[str, str] = {}  # path -> what was wrong

    def batches(self, loader: Any, start: int = 0) -> Iterator[tuple[int, Any]]:
        """``(batch_id, batch)`` of a guarded loader; ids count skipped batches too, so a resume lines up."""
        for batch_id, batch in enumerate(loader, start=start):
            if isinstance(batch, GuardedBatch):
                self._handle(batch.bad)
                if batch.batch is None:
                    continue
                batch = batch.batch
            yield batch_id, batch

    def _handle(self, bad: list[BadItem]) -> None:
        for item in bad:
            message = f"bad audio {item.path}: {item.what}"
            if self.policy == "stop":
                raise BadDataError(f"{message} (check all files with `effspeech check-data`; or skip such files "
                                   "with -o config.runner.on_bad_data=skip)")  # fmt: skip
            logger.warning("%s: skipped", message)
            self.skipped += 1
            self.files[item.path] = item.what

    def summary(self) -> dict[str, Any]:
        """For results.json."""
        return {"policy": self.policy, "skipped_items": self.skipped, "files": self.files}
