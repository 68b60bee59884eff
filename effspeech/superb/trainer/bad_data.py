"""Bad audio during training stops the run naming the file, or is skipped and counted
(``runner.on_bad_data: stop|skip``). The loader's dataset and collate are wrapped so that a failing item
becomes a ``BadItem`` naming its file (the tapped reads of ``audio_reads`` say which file it was), and
the main process applies the policy."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader, Dataset

from effspeech.errors import ConfigError, EffspeechError
from effspeech.superb.trainer.audio_reads import BadAudio, recording_opened

logger = logging.getLogger(__name__)

POLICIES = ("stop", "skip")  # runner.on_bad_data


class BadDataError(EffspeechError, RuntimeError):
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


@dataclass
class Salvaged:
    """An item read again without the bad files its task's ``salvage`` took out of it (ASR's buckets)."""

    item: Any
    bad: list[BadItem]


Salvage = Callable[[Dataset, int, str], bool]  # (recipe dataset, item index, bad file) -> the file was taken out


class GuardedDataset(Dataset):
    """The recipe's dataset, whose failing items come back as ``BadItem`` naming the file that failed, or,
    where the task can take a bad file out of an item (``Task.salvage``), as the rest of the item."""

    def __init__(self, dataset: Dataset, salvage: Salvage | None = None) -> None:
        self.dataset = dataset
        self.salvage = salvage

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        dropped: list[BadItem] = []
        while True:
            with recording_opened() as opened:
                try:
                    item = self.dataset[index]
                    return Salvaged(item, dropped) if dropped else item
                except BadAudio as error:
                    bad = BadItem(index, error.path, error.what)
                except Exception as error:  # e.g. the recipe's KeyError for a label outside its label set
                    path = opened[-1] if opened else f"item {index}"
                    return BadItem(index, path, f"{type(error).__name__}: {error}")
            if self.salvage is None or not self.salvage(self.dataset, index, bad.path):
                return bad
            dropped.append(bad)


class GuardedCollate:
    """The recipe's collate over the good items; the bad ones (and the files taken out of salvaged items)
    travel beside the batch. A clean batch is the recipe's own, untouched."""

    def __init__(self, collate: Any) -> None:
        self.collate = collate

    def __call__(self, samples: list[Any]) -> Any:
        bad = [sample for sample in samples if isinstance(sample, BadItem)]
        bad += [item for sample in samples if isinstance(sample, Salvaged) for item in sample.bad]
        if not bad:
            return self.collate(samples)
        good = [sample.item if isinstance(sample, Salvaged) else sample for sample in samples]
        good = [sample for sample in good if not isinstance(sample, BadItem)]
        return GuardedBatch(self.collate(good) if good else None, bad)


def guarded_loader(loader: DataLoader, salvage: Salvage | None = None) -> DataLoader:
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
    dataset = GuardedDataset(loader.dataset, salvage)
    return DataLoader(dataset, collate_fn=GuardedCollate(loader.collate_fn), **settings)


class BadDataLog:
    """Counts skipped files for results.json and applies the policy, in the main process."""

    def __init__(self, policy: str) -> None:
        if policy not in POLICIES:
            raise ConfigError(f"runner.on_bad_data must be one of {POLICIES}, got {policy!r}")
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
