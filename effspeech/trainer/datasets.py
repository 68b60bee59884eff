"""Where each recipe finds its data. ``--data-root DIR`` points every task at a Mini-SUPERB tree (see
``effspeech.synth``); for real corpora set the same config keys (listed in docs/tasks.md) with ``-o``."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from typing import Any

# task -> {config key path (under downstream_expert): path relative to <data-root>}
DATA_KEYS: dict[str, dict[str, str]] = {
    "speech_commands": {
        "datarc.speech_commands_root": "ks/speech_commands_v0.01",
        "datarc.speech_commands_test_root": "ks/speech_commands_test_set_v0.01",
    },
    "voxceleb1": {
        "datarc.file_path": "sid/VoxCeleb1",
        "datarc.meta_data": "sid/VoxCeleb1/iden_split.txt",
    },
    "fluent_commands": {"datarc.file_path": "ic/fluent_speech_commands_dataset"},
    "emotion": {"datarc.root": "er/IEMOCAP_full_release", "datarc.meta_data": "er/meta_data"},
    "asr": {
        "datarc.libri_root": "asr/LibriSpeech",
        "datarc.bucket_file": "asr/len_for_bucket",
        "datarc.dict_path": "asr/char.dict",
    },
    "diarization": {
        "loaderrc.train_dir": "sd/train",
        "loaderrc.dev_dir": "sd/dev",
        "loaderrc.test_dir": "sd/test",
    },
}


def fill_data_paths(task: str, config: dict[str, Any], data_root: str | Path) -> dict[str, str]:
    """Set ``task``'s data keys to the sub-directories of ``data_root``; return what was set."""
    if task not in DATA_KEYS:
        raise ValueError(f"--data-root knows the tasks {sorted(DATA_KEYS)}, not {task!r}")
    expert = config.setdefault("downstream_expert", {})
    filled = {}
    for key, relative in DATA_KEYS[task].items():
        section, name = key.split(".")
        path = str(Path(data_root, relative).resolve())  # absolute: evaluation may run from elsewhere
        expert.setdefault(section, {})[name] = path
        filled[f"downstream_expert.{key}"] = path
    return filled


def prepare_recipe(task: str, expdir: str | Path, rank: int) -> None:
    """Per-recipe quirks, before the recipe is imported. voxceleb1's dataset caches its file lists inside the
    installed s3prl package under a fixed name, so a second corpus would silently reuse the first one's
    lists: use a fresh cache per experiment and rank."""
    if task == "voxceleb1":
        dataset = importlib.import_module("s3prl.downstream.voxceleb1.dataset")

        cache = Path(expdir, ".cache", f"voxceleb1-rank{rank}")
        shutil.rmtree(cache, ignore_errors=True)
        dataset.CACHE_PATH = f"{cache}/"
