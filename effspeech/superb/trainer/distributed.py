"""torchrun support: one process per device, nccl on GPU and gloo on CPU, rank 0 logs/evaluates/saves.

A rank that dies must not leave the others waiting forever in a collective: every collective gives up
after ``runner.ddp_timeout`` seconds (``DEFAULT_TIMEOUT``), and when one fails the survivor names the
ranks whose process is gone, from the ``.ddp/rank<k>.json`` files each rank writes at start."""

from __future__ import annotations

import datetime
import json
import os
import socket
import time
from argparse import Namespace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from effspeech.errors import EffspeechError
from effspeech.superb.records import process_alive

DEFAULT_TIMEOUT = 1800  # seconds a collective waits for a silent rank; the leader's evaluation must fit
RANKS = ".ddp"  # <expdir>/.ddp/rank<k>.json: each rank's pid and host


class RankLostError(EffspeechError, RuntimeError):
    """A DDP collective failed because another rank stopped answering."""


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def setup(args: Namespace, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Join the process group torchrun describes, pin this process to its GPU and record who it is."""
    if not launched_by_torchrun() or dist.is_initialized():
        return
    args.local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if str(args.device).startswith("cuda"):
        torch.cuda.set_device(args.local_rank)
        args.device = f"cuda:{args.local_rank}"
    backend = args.backend or ("nccl" if str(args.device).startswith("cuda") else "gloo")
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
    folder = Path(args.expdir, RANKS)
    folder.mkdir(parents=True, exist_ok=True)
    record = {"rank": rank(), "pid": os.getpid(), "host": socket.gethostname(), "run": _run_id()}
    Path(folder, f"rank{rank()}.json").write_text(json.dumps(record))


def _run_id() -> str:
    """What tells this launch's rank files from those an earlier launch left in the same directory."""
    return os.environ.get("TORCHELASTIC_RUN_ID") or f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}"


def lost_ranks(expdir: str | Path) -> list[str]:
    """The other ranks whose process is gone (those on this host can be checked), as ``rank k (pid p)``."""
    lost = []
    for path in sorted(Path(expdir, RANKS).glob("rank*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if record.get("run") != _run_id() or record["rank"] == rank() or record["rank"] >= world_size():
            continue
        if record["host"] == socket.gethostname() and not process_alive(record["pid"]):
            lost.append(f"rank {record['rank']} (pid {record['pid']})")
    return lost


# what gloo and NCCL say when a peer is gone or silent (a DataLoader's own timeout is not among them)
PEER_FAILURES = ("connection closed by peer", "connection reset by peer", "broken pipe", "timed out waiting",
                 "caused pair closure", "gloo", "nccl", "watchdog")  # fmt: skip


def is_peer_failure(error: RuntimeError, expdir: str | Path) -> bool:
    """Whether a RuntimeError is a collective that another rank broke (not a bug of this rank)."""
    return bool(lost_ranks(expdir)) or any(words in str(error).lower() for words in PEER_FAILURES)


LOST_RANK_GRACE = 3.0  # seconds: a killed peer's sockets close before its process turns into a zombie


def explain_failure(error: RuntimeError, expdir: str | Path) -> RankLostError:
    """What a failed collective means: the ranks that are gone, or the timeout that ran out.

    A SIGKILLed rank's sockets are closed while its process is still exiting, so the survivor may read
    "connection reset" a moment before the peer can be seen dead; the lookup is retried for a moment."""
    lost = lost_ranks(expdir)
    deadline = time.monotonic() + LOST_RANK_GRACE
    while not lost and time.monotonic() < deadline:
        time.sleep(0.1)
        lost = lost_ranks(expdir)
    who = ", ".join(lost) if lost else "another rank (on another host, or stalled past runner.ddp_timeout)"
    return RankLostError(
        f"rank {rank()} stops: {who} stopped answering ({str(error).splitlines()[0]}); resume with -a from the "
        "last complete checkpoint"
    )


def teardown() -> None:
    if dist.is_initialized():
        try:
            dist.destroy_process_group()
        except RuntimeError:  # a group a dead rank broke: nothing left to close cleanly
            pass


def is_leader() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def gather(obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order (just ``[obj]`` without DDP)."""
    if not dist.is_initialized():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered
