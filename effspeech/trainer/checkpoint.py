"""Checkpoints that survive crashes and load with ``torch.load(weights_only=True)``: plain containers and
tensors only, written to a temp file in the same directory, fsynced, then renamed over the old one."""

from __future__ import annotations

import glob
import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATES_PATTERN = re.compile(r"states-(\d+)\.ckpt$")


def atomic_save(obj: dict[str, Any], path: str | Path) -> None:
    """Write ``obj`` to ``path`` so that a reader sees either the old file or the complete new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file what open() would have
        with os.fdopen(fd, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load(path: str | Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def states_checkpoints(directory: str | Path) -> list[Path]:
    """``states-<step>.ckpt`` files of an experiment, oldest step first."""
    found = [Path(p) for p in glob.glob(str(Path(directory, "states-*.ckpt"))) if STATES_PATTERN.search(p)]
    return sorted(found, key=lambda p: int(STATES_PATTERN.search(p.name).group(1)))


def resolve(path: str | Path) -> Path:
    """A checkpoint file, or the latest ``states-*.ckpt`` in a directory (S3PRL's ``-e DIR``)."""
    path = Path(path)
    if path.is_dir():
        found = states_checkpoints(path)
        if not found:
            raise FileNotFoundError(f"no states-*.ckpt in {path}")
        return found[-1]
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return path


def prune(directory: str | Path, max_keep: int) -> None:
    """Keep the newest ``max_keep`` ``states-*.ckpt``. Called after a save succeeded, so a failed save
    never costs the checkpoint it was meant to replace."""
    found = states_checkpoints(directory)
    for old in found[: max(0, len(found) - max_keep)]:
        old.unlink()


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as tensors and numbers (nothing that needs pickle to load)."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss"]))
    numpy = state["numpy"]
    np.random.set_state(
        (numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"], numpy["cached"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
