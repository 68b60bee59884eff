"""Run cells: skip finished ones, resume interrupted ones, run N at a time, record each cell's state.

A cell is finished when its ``results.json`` holds an ``evaluate`` entry (the test metric). Each cell
keeps ``cell.json`` (state, pid, return code, commands) and ``cell.log`` (its output) in its directory."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from effspeech.leaderboard.grid import Cell, Launch

STATE_FILE = "cell.json"
LOG_FILE = "cell.log"


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def is_finished(expdir: Path) -> bool:
    return "evaluate" in read_json(expdir / "results.json")


def has_checkpoint(expdir: Path) -> bool:
    return any(expdir.glob("states-*.ckpt"))


def best_checkpoint(expdir: Path) -> str | None:
    """The best-dev checkpoint the recipe asked to save, else the newest periodic one."""
    names = read_json(expdir / "results.json").get("train", {}).get("best_checkpoints", [])
    existing = [name for name in names if (expdir / name).is_file()]
    if existing:
        return existing[0]
    periodic = sorted(expdir.glob("states-*.ckpt"), key=lambda p: int(p.stem.split("-")[-1]))
    return periodic[-1].name if periodic else None


def write_state(expdir: Path, **state) -> None:
    path = expdir / STATE_FILE
    merged = {**read_json(path), **state, "updated": time.time()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(merged, indent=2) + "\n")
    os.replace(tmp, path)


def run_cell(cell: Cell, launch: Launch, threads: int) -> int:
    """Train (resuming if a checkpoint exists), then evaluate the best checkpoint; 0 on success."""
    expdir = cell.expdir(launch.out)
    expdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    write_state(expdir, settings=settings(launch.train_command(cell, resume=False)))
    with open(expdir / LOG_FILE, "a") as log:
        train = launch.train_command(cell, resume=has_checkpoint(expdir))
        code = _run(train, expdir, log, env, phase="train")
        if code == 0:
            checkpoint = best_checkpoint(expdir)
            if checkpoint is None:
                log.write("no checkpoint was saved: nothing to evaluate\n")
                code = 1
            else:
                code = _run(launch.evaluate_command(cell, checkpoint), expdir, log, env, phase="evaluate")
    write_state(expdir, state="done" if code == 0 and is_finished(expdir) else "failed", returncode=code)
    return code


def _run(command: list[str], expdir: Path, log, env: dict, phase: str) -> int:
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    write_state(expdir, state="running", phase=phase, pid=process.pid, command=command)
    return process.wait()


def settings(train_command: list[str]) -> list[str]:
    """What a cell was trained with: its train command from ``-m`` on (not the interpreter's path), plus
    the SHA-256 of the ``-k`` checkpoint, so that a file replaced in place (a new shipped hubert_mini)
    makes the cells trained on the old one stale."""
    recorded = train_command[train_command.index("-m") :]
    if "-k" in recorded:
        checkpoint = Path(recorded[recorded.index("-k") + 1])
        if checkpoint.is_file():
            recorded += ["--checkpoint-sha256", file_digest(checkpoint)]
    return recorded


def file_digest(path: Path) -> str:
    """SHA-256 of a file, cached while its size and modification time stay the same."""
    stat = path.stat()
    return _cached_digest(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _cached_digest(path: Path, size: int, mtime_ns: int) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def stale_cells(cells: list[Cell], launch: Launch) -> list[Cell]:
    """Finished cells whose recorded settings differ from what the grid would run now (other steps, say):
    they are kept, not rerun, so the caller must say so."""
    stale = []
    for cell in cells:
        expdir = cell.expdir(launch.out)
        recorded = read_json(expdir / STATE_FILE).get("settings")
        if is_finished(expdir) and recorded and recorded != settings(launch.train_command(cell, resume=False)):
            stale.append(cell)
    return stale


def run_grid(cells: list[Cell], launch: Launch, jobs: int) -> dict[Cell, int]:
    """Run every unfinished cell, ``jobs`` at a time; return each run cell's exit status."""
    pending = [cell for cell in cells if not is_finished(cell.expdir(launch.out))]
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        codes = dict(zip(pending, pool.map(lambda cell: run_cell(cell, launch, threads), pending)))
    return codes
