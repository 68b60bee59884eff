"""KS, keyword spotting: S3PRL's ``speech_commands`` recipe on Speech Commands v0.01 (12 classes) and its
separate test set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from effspeech.superb.audio import Entry, Problem, label_problem
from effspeech.superb.tasks.prediction import UtteranceClasses, recipe_module
from effspeech.superb.tasks.task import Budget, Task

# The ten commands, _unknown_ and _silence_: the recipe's label set, in its order.
CLASSES = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_")


def list_audio(datarc: dict[str, Any]) -> Iterator[Entry | Problem]:
    for split, key in (("train/dev", "speech_commands_root"), ("test", "speech_commands_test_root")):
        for folder in sorted(p for p in Path(datarc[key]).iterdir() if p.is_dir()):
            for path in sorted(folder.glob("*.wav")):
                if split == "test" and folder.name not in CLASSES:  # the test set has no _unknown_ mapping
                    yield label_problem(path, folder.name, CLASSES)
                yield Entry(split, str(path))


TASK = Task(
    name="speech_commands",
    alias="ks",
    test_split="test",
    metric="acc",
    higher_is_better=True,
    data_keys={
        "datarc.speech_commands_root": "ks/speech_commands_v0.01",
        "datarc.speech_commands_test_root": "ks/speech_commands_test_set_v0.01",
    },
    train_batch_keys=("datarc.batch_size",),
    converts_audio=True,  # its sox effects down-mix and resample
    list_audio=list_audio,
    # the recipe's labels, and its reader's effects (mono, 16 kHz, 3 dB down), for every recording predicted
    predictor=UtteranceClasses(
        "speech_commands",
        lambda head: list(recipe_module("speech_commands").CLASSES),
        effects=lambda: recipe_module("speech_commands", "dataset").EFFECTS,
    ),
    superb=Budget(200000, 5000),
    cpu=Budget(400, 200, {"runner.eval_dataloaders": "['dev']"}),
)
