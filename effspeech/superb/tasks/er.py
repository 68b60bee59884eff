"""ER, emotion recognition: S3PRL's ``emotion`` recipe on IEMOCAP, four classes (exc merged into hap),
five folds that each test on one session; SUPERB reports the mean over the folds.

The recipe reads per-fold JSON meta data that S3PRL's ``IEMOCAP_preprocess.py`` makes and its pip
package does not ship; ``iemocap_meta`` derives the same files from the corpus (real or Mini-SUPERB)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from effspeech.errors import MissingFileError
from effspeech.superb.audio import Entry, Problem, label_problem
from effspeech.superb.tasks.prediction import UtteranceClasses
from effspeech.superb.tasks.task import Budget, Task

LABELS = {"neu": 0, "hap": 1, "ang": 2, "sad": 3}  # 'exc' is merged into 'hap', as S3PRL does
LABEL_LINE = re.compile(r"^\[[^\]]*\]\t(\S+)\t(\S+)\t")


def list_audio(datarc: dict[str, Any]) -> Iterator[Entry | Problem]:
    for meta in sorted(Path(datarc["meta_data"]).glob("Session*/*_meta_data.json")):
        data = json.loads(meta.read_text())
        for item in data["meta_data"]:
            path = Path(datarc["root"], item["path"])
            if item["label"] not in data["labels"]:
                yield label_problem(path, item["label"], data["labels"])
            yield Entry(f"{meta.parent.name}/{meta.stem.split('_')[0]}", str(path))


def _session(root: Path, session: str) -> list[dict]:
    wavs = {
        p.stem: p.relative_to(root).as_posix() for p in sorted((root / session / "sentences" / "wav").rglob("*.wav"))
    }
    meta = []
    for label_file in sorted((root / session / "dialog" / "EmoEvaluation").glob("*.txt")):
        for line in label_file.read_text(errors="replace").splitlines():
            found = LABEL_LINE.match(line + "\t")
            if not found or found.group(1) not in wavs:
                continue
            utt, emotion = found.groups()
            emotion = "hap" if emotion == "exc" else emotion
            if emotion in LABELS:
                meta.append({"path": wavs[utt], "label": emotion, "speaker": utt.split("_")[0]})
    return meta


def iemocap_meta(root: str | Path, out_dir: str | Path) -> list[Path]:
    """Five folds: ``<out_dir>/SessionN/{train,test}_meta_data.json``, test = session N, train = the rest.

    Same content as S3PRL's IEMOCAP_preprocess.py (neu/hap/ang/sad, exc -> hap, paths relative to
    ``root``), but sorted, so the files are reproducible.
    """
    root, out_dir = Path(root), Path(out_dir)
    sessions = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("Session"))
    if not sessions:
        raise MissingFileError(f"no Session* folders under {root}")
    per_session = {session: _session(root, session) for session in sessions}
    written = []
    for session in sessions:
        folds = {
            "train": [m for other in sessions if other != session for m in per_session[other]],
            "test": per_session[session],
        }
        for name, meta in folds.items():
            path = out_dir / session / f"{name}_meta_data.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"labels": LABELS, "meta_data": meta}))
            written.append(path)
    return written


def emotions(dataset: Any) -> list[str]:
    """The recipe's emotion names by output index (its meta data's ``labels``)."""
    return [dataset.idx2emotion[index] for index in range(dataset.class_num)]


TASK = Task(
    name="emotion",
    alias="er",
    test_split="test",
    metric="acc",
    higher_is_better=True,
    data_keys={"datarc.root": "er/IEMOCAP_full_release", "datarc.meta_data": "er/meta_data"},
    train_batch_keys=("datarc.train_batch_size",),
    folds=5,
    fold_key="datarc.test_fold",
    list_audio=list_audio,
    # the recipe reads every file while it is built: read lazily instead, so that skip can skip one
    skip_settings={"downstream_expert.datarc.pre_load": False},
    predictor=UtteranceClasses("emotion", lambda head: emotions(head.test_dataset)),
    superb=Budget(30000, 1000),
    cpu=Budget(100, 100, {"runner.eval_dataloaders": "['dev']"}),
)
