"""The progress view: each cell's state (done, running, interrupted, failed, pending) and current step."""

from __future__ import annotations

import os
import re
from pathlib import Path

from effspeech.leaderboard.execute import LOG_FILE, STATE_FILE, is_finished, read_json
from effspeech.leaderboard.grid import Cell

PROGRESS = re.compile(r"overall:\s+\d+%\|[^|]*\|\s*(\d+)/(\d+)")  # the trainer's total-steps bar


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def current_step(expdir: Path) -> str:
    """``step/total`` from the newest training progress bar in the cell's log."""
    log = expdir / LOG_FILE
    if not log.is_file():
        return ""
    with open(log, "rb") as handle:
        handle.seek(max(0, log.stat().st_size - 20000))
        tail = handle.read().decode(errors="replace")
    matches = PROGRESS.findall(tail)
    return f"{matches[-1][0]}/{matches[-1][1]}" if matches else ""


def cell_state(expdir: Path) -> str:
    if is_finished(expdir):
        return "done"
    state = read_json(expdir / STATE_FILE)
    if state.get("state") == "running":
        return "running" if _alive(state.get("pid")) else "interrupted"
    return state.get("state", "pending")


def format_status(cells: list[Cell], out: Path) -> str:
    rows = [(cell.name, cell_state(cell.expdir(out)), current_step(cell.expdir(out))) for cell in cells]
    width = max([len(name) for name, _, _ in rows] + [4])
    lines = [f"{'cell':<{width}}  {'state':<11}  step"]
    lines += [f"{name:<{width}}  {state:<11}  {step}" for name, state, step in rows]
    counts = {state: sum(1 for _, s, _ in rows if s == state) for state in sorted({s for _, s, _ in rows})}
    lines.append("  ".join(f"{state}={count}" for state, count in counts.items()))
    return "\n".join(lines)
