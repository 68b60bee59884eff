"""IC, intent classification: S3PRL's ``fluent_commands`` recipe on Fluent Speech Commands (an utterance
is right when its action, object and location all are)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from effspeech.superb.audio import Entry, Problem, label_problem
from effspeech.superb.tasks.prediction import UtteranceClasses
from effspeech.superb.tasks.task import Budget, Task

SLOTS = ("action", "object", "location")


def list_audio(datarc: dict[str, Any]) -> Iterator[Entry | Problem]:
    root = Path(datarc["file_path"])
    tables = {}
    for split in ("train", "valid", "test"):
        with open(root / "data" / f"{split}_data.csv", newline="") as handle:
            tables[split] = list(csv.DictReader(handle))
    known = {slot: {row[slot] for row in tables["train"]} for slot in SLOTS}  # the recipe's label set
    for split, rows in tables.items():
        for row in rows:
            path = root / row["path"]
            for slot in SLOTS:
                if row[slot] not in known[slot]:
                    yield label_problem(path, f"{slot}={row[slot]}", known[slot])
            yield Entry(split, str(path))


def slot_values(head: Any) -> dict[str, list[str]]:
    """The recipe's ``Sy_intent``: each slot's values by output index, in the order it counted them."""
    return {slot: [head.Sy_intent[slot][i] for i in range(count)] for slot, count in zip(SLOTS, head.values_per_slot)}


TASK = Task(
    name="fluent_commands",
    alias="ic",
    test_split="test",
    metric="acc",
    higher_is_better=True,
    data_keys={"datarc.file_path": "ic/fluent_speech_commands_dataset"},
    train_batch_keys=("datarc.train_batch_size",),
    list_audio=list_audio,
    predictor=UtteranceClasses("fluent_commands", slot_values),
    superb=Budget(200000, 5000),
    # 1000 steps: at 300 every frozen upstream's weighted sum is still near chance
    cpu=Budget(1000, 200, {"runner.eval_dataloaders": "['dev']"}),
)
