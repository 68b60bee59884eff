"""SD, speaker diarization: S3PRL's ``diarization`` recipe on two-speaker Libri2Mix in Kaldi-style
folders (``wav.scp``, ``segments``, ``utt2spk``, ``spk2utt``, ``reco2dur``); frame-level DER."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from effspeech.superb.audio import Entry, Problem
from effspeech.superb.tasks.task import Budget, Task


def list_audio(loaderrc: dict[str, Any]) -> Iterator[Entry | Problem]:
    for key in ("train_dir", "dev_dir", "test_dir"):
        folder = Path(loaderrc[key])
        with open(folder / "wav.scp") as lines:
            recordings = dict(line.split(None, 1) for line in lines if line.strip())
        with open(folder / "segments") as lines:
            for line in lines:
                segment, recording, *_ = line.split()
                if recording not in recordings:
                    yield Problem(
                        str(folder / "segments"),
                        "error",
                        f"segment {segment} names recording {recording!r}, not in wav.scp",
                    )
        for path in recordings.values():
            yield Entry(key.removesuffix("_dir"), path.strip())


TASK = Task(
    name="diarization",
    alias="sd",
    test_split="test",
    metric="der",
    higher_is_better=False,
    data_keys={"loaderrc.train_dir": "sd/train", "loaderrc.dev_dir": "sd/dev", "loaderrc.test_dir": "sd/test"},
    train_batch_keys=("loaderrc.train_batchsize",),
    best_checkpoint="best-states-dev.ckpt",
    list_audio=list_audio,
    superb=Budget(30000, 1000),
    cpu=Budget(150, 75, {"downstream_expert.datarc.chunk_size": 500}),
)
