"""The progress view: each cell's state (done, running, interrupted, failed, pending) and current step."""

from __future__ import annotations

import os
from pathlib import Path

from effspeech.superb import records
from effspeech.tools.leaderboard.execute import read_state
from effspeech.tools.leaderboard.grid import Cell


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def current_step(expdir: Path) -> str:
    """``step/total`` from the trainer's progress.json."""
    progress = records.read_progress(expdir)
    return progress.text if progress is not None else ""


def cell_state(expdir: Path) -> str:
    if records.is_evaluated(expdir):
        return "done"
    state = read_state(expdir)
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
