"""Which files each SUPERB recipe will read and with which label, from the same metadata and config keys the
recipe uses (docs/tasks.md), so ``check-data`` sees exactly what training will."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effspeech.checkdata.audio import Problem

KS_CLASSES = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_")
SID_SPEAKERS = 1251  # the recipe's label is int(idXXXXX[2:]) - 10001 in [0, 1251)
ASR_SPLITS = ("train", "dev-clean", "dev-other", "test-clean", "test-other")


@dataclass(frozen=True)
class Entry:
    """One audio file a recipe reads, and the split that reads it."""

    split: str
    path: str


# task -> lister(datarc or loaderrc section) -> audio entries, and the metadata faults found on the way
Lister = Callable[[dict[str, Any]], Iterator["Entry | Problem"]]


def _label_problem(path: str | Path, label: str, known: Any) -> Problem:
    return Problem(
        str(path), "error", f"label {label!r} is not in the label set ({', '.join(sorted(map(str, known)))})"
    )


def _speech_commands(datarc: dict[str, Any]) -> Iterator[Entry | Problem]:
    for split, key in (("train/dev", "speech_commands_root"), ("test", "speech_commands_test_root")):
        for folder in sorted(p for p in Path(datarc[key]).iterdir() if p.is_dir()):
            for path in sorted(folder.glob("*.wav")):
                if split == "test" and folder.name not in KS_CLASSES:  # the test set has no _unknown_ mapping
                    yield _label_problem(path, folder.name, KS_CLASSES)
                yield Entry(split, str(path))


def _fluent_commands(datarc: dict[str, Any]) -> Iterator[Entry | Problem]:
    root = Path(datarc["file_path"])
    tables = {
        split: list(csv.DictReader(open(root / "data" / f"{split}_data.csv"))) for split in ("train", "valid", "test")
    }
    slots = ("action", "object", "location")
    known = {slot: {row[slot] for row in tables["train"]} for slot in slots}  # the recipe's label set
    for split, rows in tables.items():
        for row in rows:
            path = root / row["path"]
            for slot in slots:
                if row[slot] not in known[slot]:
                    yield _label_problem(path, f"{slot}={row[slot]}", known[slot])
            yield Entry(split, str(path))


def _voxceleb1(datarc: dict[str, Any]) -> Iterator[Entry | Problem]:
    root, splits = Path(datarc["file_path"]), {"1": "train", "2": "dev", "3": "test"}
    for line in open(datarc["meta_data"]):
        index, relative = line.split()
        found = sorted(root.glob(f"*/wav/{relative}"))
        path = found[0] if found else root / "*" / "wav" / relative  # missing: reported by inspect_file
        speaker = relative.split("/")[0]
        if not (speaker[:2] == "id" and speaker[2:].isdigit() and 0 <= int(speaker[2:]) - 10001 < SID_SPEAKERS):
            yield _label_problem(path, speaker, ["id10001 .. id11251"])
        yield Entry(splits.get(index, index), str(path))


def _emotion(datarc: dict[str, Any]) -> Iterator[Entry | Problem]:
    for meta in sorted(Path(datarc["meta_data"]).glob("Session*/*_meta_data.json")):
        data = json.loads(meta.read_text())
        for item in data["meta_data"]:
            path = Path(datarc["root"], item["path"])
            if item["label"] not in data["labels"]:
                yield _label_problem(path, item["label"], data["labels"])
            yield Entry(f"{meta.parent.name}/{meta.stem.split('_')[0]}", str(path))


def _asr(datarc: dict[str, Any]) -> Iterator[Entry | Problem]:
    symbols = {line.split()[0] for line in open(datarc["dict_path"]) if line.strip()}
    transcripts: dict[Path, dict[str, str]] = {}
    for split in ASR_SPLITS:
        for name in datarc.get(split) or []:
            table = Path(datarc["bucket_file"], f"{name}.csv")
            for row in csv.DictReader(open(table)) if table.is_file() else ():
                path = Path(datarc["libri_root"], row["file_path"])
                yield from _asr_label(path, transcripts, symbols)
                yield Entry(split, str(path))


def _asr_label(path: Path, cache: dict[Path, dict[str, str]], symbols: set[str]) -> Iterator[Problem]:
    """The recipe reads ``<speaker>-<chapter>.trans.txt`` next to the audio and maps characters to the dict."""
    trans = path.parent / f"{path.parent.parent.name}-{path.parent.name}.trans.txt"
    if trans not in cache:
        lines = trans.read_text().splitlines() if trans.is_file() else []
        cache[trans] = dict((line.split(" ", 1) + [""])[:2] for line in lines if line.strip())
    text = cache[trans].get(path.name.split(".")[0])
    if text is None:
        yield Problem(str(path), "error", f"no transcript in {trans}")
        return
    unknown = sorted(set(text.upper().replace(" ", "|")) - symbols)
    if unknown:
        yield _label_problem(path, "".join(unknown), symbols)


def _diarization(loaderrc: dict[str, Any]) -> Iterator[Entry | Problem]:
    for key in ("train_dir", "dev_dir", "test_dir"):
        folder = Path(loaderrc[key])
        recordings = dict(line.split(None, 1) for line in open(folder / "wav.scp") if line.strip())
        for line in open(folder / "segments"):
            segment, recording, *_ = line.split()
            if recording not in recordings:
                yield Problem(
                    str(folder / "segments"),
                    "error",
                    f"segment {segment} names recording {recording!r}, not in wav.scp",
                )
        for path in recordings.values():
            yield Entry(key.removesuffix("_dir"), path.strip())


LISTERS: dict[str, tuple[str, Lister]] = {  # task -> (config section under downstream_expert, lister)
    "speech_commands": ("datarc", _speech_commands),
    "fluent_commands": ("datarc", _fluent_commands),
    "voxceleb1": ("datarc", _voxceleb1),
    "emotion": ("datarc", _emotion),
    "asr": ("datarc", _asr),
    "diarization": ("loaderrc", _diarization),
}


def list_entries(task: str, config: dict[str, Any]) -> Iterator[Entry | Problem]:
    """The audio files ``task``'s recipe reads under ``config``, and metadata faults (unknown labels)."""
    if task not in LISTERS:
        raise ValueError(f"check-data knows the tasks {sorted(LISTERS)}, not {task!r}")
    section, lister = LISTERS[task]
    return lister(config.get("downstream_expert", {}).get(section, {}))
