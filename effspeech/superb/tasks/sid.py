"""SID, speaker identification: S3PRL's ``voxceleb1`` recipe on VoxCeleb1 with the official
``iden_split.txt`` (1,251 speakers)."""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from effspeech.superb.audio import Entry, Problem, label_problem
from effspeech.superb.tasks.prediction import UtteranceClasses
from effspeech.superb.tasks.task import Budget, Task

SPEAKERS = 1251  # the recipe's label is int(idXXXXX[2:]) - 10001 in [0, 1251)
SPLITS = {"1": "train", "2": "dev", "3": "test"}


def list_audio(datarc: dict[str, Any]) -> Iterator[Entry | Problem]:
    root = Path(datarc["file_path"])
    with open(datarc["meta_data"]) as lines:
        for line in lines:
            index, relative = line.split()
            found = sorted(root.glob(f"*/wav/{relative}"))
            path = found[0] if found else root / "*" / "wav" / relative  # missing: reported by inspect_file
            speaker = relative.split("/")[0]
            if not (speaker[:2] == "id" and speaker[2:].isdigit() and 0 <= int(speaker[2:]) - 10001 < SPEAKERS):
                yield label_problem(path, speaker, ["id10001 .. id11251"])
            yield Entry(SPLITS.get(index, index), str(path))


def use_private_cache(expdir: Path, rank: int) -> None:
    """The recipe's dataset caches its file lists inside the installed s3prl package under a fixed name,
    so a second corpus would silently reuse the first one's lists: give each experiment and rank its own."""
    dataset = importlib.import_module("s3prl.downstream.voxceleb1.dataset")
    cache = Path(expdir, ".cache", f"voxceleb1-rank{rank}")
    shutil.rmtree(cache, ignore_errors=True)
    dataset.CACHE_PATH = f"{cache}/"


def speaker_ids(dataset: Any) -> list[str]:
    """The recipe's speaker names by output index (``id10001`` ... for VoxCeleb1's 1251 speakers)."""
    return dataset.label2speaker(range(dataset.speaker_num))


TASK = Task(
    name="voxceleb1",
    alias="sid",
    test_split="test",
    metric="acc",
    higher_is_better=True,
    data_keys={"datarc.file_path": "sid/VoxCeleb1", "datarc.meta_data": "sid/VoxCeleb1/iden_split.txt"},
    train_batch_keys=("datarc.train_batch_size",),
    list_audio=list_audio,
    prepare=use_private_cache,
    predictor=UtteranceClasses("voxceleb1", lambda head: speaker_ids(head.train_dataset)),
    superb=Budget(200000, 10000),
    cpu=Budget(300, 150, {"runner.eval_dataloaders": "['dev']", "downstream_expert.datarc.max_timestep": 32000}),
)
