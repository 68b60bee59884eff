"""Run cells: skip finished ones, resume interrupted ones, run N at a time, record each cell's state.

A cell is finished when its ``results.json`` holds an ``evaluate`` entry (the test metric). Each cell
keeps ``cell.json`` (state, pid, return code, commands, the settings it was trained with) and
``cell.log`` (its output) in its directory; the trainer's ``progress.json`` says where it is.

A stop signal to the grid (SIGTERM, SIGUSR1, SIGINT) goes to every cell it runs, which saves its current
step and exits 75 (docs/reliability.md); no further cell starts, and the grid then exits 75 too. The
cells run in their own sessions, so a Ctrl-C in the terminal reaches them once, through the grid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from effspeech.superb import records
from effspeech.superb.tasks import by_alias
from effspeech.superb.trainer.preemption import Preempted, handling
from effspeech.tools.leaderboard.grid import Cell, Launch

STATE_FILE = "cell.json"
LOG_FILE = "cell.log"

Watcher = Callable[[records.Progress | None], None]


def read_state(expdir: Path) -> dict:
    return records.read_json(expdir / STATE_FILE)


def write_state(expdir: Path, **state) -> None:
    records.write_json(expdir / STATE_FILE, {**read_state(expdir), **state, "updated": time.time()})


def has_started(expdir: Path) -> bool:
    """Finished, or holding a checkpoint that a rerun would resume."""
    return records.is_evaluated(expdir) or bool(records.states_checkpoints(expdir))


def settings(launch: Launch, cell: Cell, expdir: Path) -> list[str]:
    """What a cell is trained with: its ``run_downstream.py`` arguments, plus the SHA-256 of the ``-k``
    checkpoint, so that a file replaced in place (a new shipped hubert_mini) makes the cells trained on
    the old one stale."""
    recorded = launch.train_args(cell, expdir, resume=False)
    if "--cache-frozen" in recorded:  # whether the frozen part is per clip matters; where and how much is cached not
        del recorded[recorded.index("--cache-frozen") + 1]
    if "--cache-size" in recorded:
        del recorded[recorded.index("--cache-size") : recorded.index("--cache-size") + 2]
    if "-k" in recorded:
        checkpoint = Path(recorded[recorded.index("-k") + 1])
        if checkpoint.is_file():
            recorded += ["--checkpoint-sha256", records.file_digest(checkpoint)]
    return recorded


def checkpoint_digest(expdir: Path) -> str | None:
    """The SHA-256 of the upstream checkpoint the cell was trained on, as its settings recorded it."""
    recorded = read_state(expdir).get("settings") or []
    return recorded[recorded.index("--checkpoint-sha256") + 1] if "--checkpoint-sha256" in recorded else None


def is_stale(cell: Cell, expdir: Path, launch: Launch) -> bool:
    """Whether the cell started (finished, or resumable) with other settings than ``launch`` would use now
    (other steps, another upstream checkpoint). A finished stale cell is kept as it is and an unfinished
    one is not resumed, since it would mix two settings: the caller says which and why."""
    recorded = read_state(expdir).get("settings")
    return bool(recorded) and has_started(expdir) and _from_mode(recorded) != settings(launch, cell, expdir)


def _from_mode(recorded: list[str]) -> list[str]:
    """Settings from ``-m train`` on: cells recorded before 2026-12 kept a torchrun prefix in front of them."""
    starts = [i for i in range(len(recorded) - 1) if recorded[i : i + 2] == ["-m", "train"]]
    return recorded[starts[0] :] if starts else recorded


def stale_cells(cells: list[Cell], out: Path, launch: Launch) -> list[Cell]:
    return [cell for cell in cells if is_stale(cell, cell.expdir(out), launch)]


class CellProcesses:
    """The cells' live processes, and the stop signal the grid received (its name, or None)."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._live: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def add(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._live.add(process)
            if self.signal is not None:  # started as the signal came: it stops too
                process.send_signal(signal.Signals[self.signal])

    def remove(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._live.discard(process)

    def _forward(self, signum: int, _frame: object) -> None:
        self.signal = self.signal or signal.Signals(signum).name
        with self._lock:
            for process in self._live:
                process.send_signal(signum)

    def forwarding(self) -> contextlib.AbstractContextManager[None]:
        return handling(self._forward)


def run_cell(
    cell: Cell,
    expdir: Path,
    launch: Launch,
    threads: int | None,
    watch: Watcher | None = None,
    processes: CellProcesses | None = None,
) -> int:
    """Train (resuming if a checkpoint exists), then evaluate the best checkpoint; 0 on success. ``threads``:
    OpenMP threads of the cell's processes (None: torch's default); ``watch`` is called with the trainer's
    progress about once a second while the cell runs; ``processes`` tracks its processes for the grid."""
    expdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    resume = bool(records.states_checkpoints(expdir))
    if not resume or "settings" not in read_state(expdir):
        write_state(expdir, settings=settings(launch, cell, expdir))
    with open(expdir / LOG_FILE, "a") as log:
        code = _run(launch.train_command(cell, expdir, resume), expdir, log, env, "train", watch, processes)
        if code == 0 and not (processes and processes.signal):
            best = records.best_checkpoint(expdir, by_alias(cell.task).best_checkpoint)
            if best is None:
                log.write("no checkpoint was saved: nothing to evaluate\n")
                code = 1
            else:
                code = _run(launch.evaluate_command(best), expdir, log, env, "evaluate", watch, processes)
    done = code == 0 and records.is_evaluated(expdir)
    write_state(expdir, state="done" if done else "interrupted" if processes and processes.signal else "failed",
                returncode=code)  # fmt: skip
    return code


def _run(
    command: list[str], expdir: Path, log, env: dict, phase: str, watch: Watcher | None, processes: CellProcesses | None
) -> int:
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=processes is not None
    )
    write_state(expdir, state="running", phase=phase, pid=process.pid, command=command)
    if processes is not None:
        processes.add(process)
    try:
        while True:
            try:
                return process.wait(timeout=1.0 if watch else None)
            except subprocess.TimeoutExpired:
                watch(records.read_progress(expdir))
    finally:
        if processes is not None:
            processes.remove(process)


def run_grid(cells: list[Cell], out: Path, launch: Launch, jobs: int, skip: list[Cell]) -> dict[Cell, int]:
    """Run every unfinished cell except ``skip`` and those another live process trains now (its lock is
    held), ``jobs`` at a time; return each run cell's exit status."""
    pending = [cell for cell in cells if not records.is_evaluated(cell.expdir(out)) and cell not in skip]
    for cell in list(pending):
        holder = records.lock_holder(cell.expdir(out))
        if holder is not None:
            print(f"warning: {cell.name} is being trained by {holder}: not started", file=sys.stderr)
            pending.remove(cell)
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    processes = CellProcesses()

    def run(cell: Cell) -> int | None:
        return None if processes.signal else run_cell(cell, cell.expdir(out), launch, threads, None, processes)

    with processes.forwarding(), ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        codes = dict(zip(pending, pool.map(run, pending)))
    if processes.signal:
        stopped = [cell.name for cell in pending if read_state(cell.expdir(out)).get("state") == "interrupted"]
        raise Preempted(
            f"stopped on {processes.signal}: {len(stopped)} running cell(s) saved their step and stopped "
            f"({', '.join(stopped) or 'none'}); rerun the same command to resume"
        )
    return {cell: code for cell, code in codes.items() if code is not None}
