"""The files of an experiment directory, and the one module that knows their names and keys:
``states-<step>.ckpt`` and the recipes' best-dev checkpoints (``TrainingState``), ``results.json``
(what a run measured), ``progress.json`` (where a running job is) and the atomic writer they share.

Everything here is written so that a crash leaves either the old file or the complete new one:
the bytes go to a temp file in the same directory, are flushed and fsynced, and the temp file is
renamed over the target. Checkpoints hold plain containers and tensors only, so they load with
``torch.load(weights_only=True)``."""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import hashlib
import io
import json
import logging
import os
import re
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from effspeech.errors import ConfigError, MissingFileError, WriteError
from effspeech.files import atomic_write

logger = logging.getLogger(__name__)

RESULTS = "results.json"
PROGRESS = "progress.json"
STATES = re.compile(r"states-(\d+)\.ckpt$")


# ------------------------------------------------------------------------------------------ writing
def torch_bytes(obj: Any) -> bytes:
    """``torch.save`` into memory: written with ``atomic_write``, a full disk then says so (``torch.save``
    into a file reports it as an unrelated ``RuntimeError``)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def write_json(path: str | Path, data: Any) -> Path:
    return atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON record, ``{}`` when the file does not exist yet; a damaged file is an error naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON ({error}); move it away to start that record afresh") from error


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file, cached while its size and modification time stay the same; of a directory (a
    transformers checkpoint), SHA-256 over its files' relative paths and digests."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        listing = "".join(f"{p.relative_to(path).as_posix()} {file_digest(p)}\n" for p in files)
        return hashlib.sha256(listing.encode()).hexdigest()
    stat = path.stat()
    return _cached_digest(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _cached_digest(path: Path, size: int, mtime_ns: int) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# -------------------------------------------------------------------------------------- checkpoints
@dataclass
class TrainingState:
    """One checkpoint: what a resume needs and nothing frozen. On disk a dict with S3PRL-style keys
    (``Step``, ``Args``, ``Config``, ...), the same since the first release."""

    step: int
    args: dict[str, Any]
    config: dict[str, Any]
    adapter_spec: dict[str, Any]
    adapter_state: dict[str, torch.Tensor]
    featurizer: dict[str, torch.Tensor]
    downstream: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None = None
    rng: list[dict[str, Any]] | None = None  # one entry per DDP rank
    epoch: int = 0
    batch_in_epoch: int = 0
    wall_time: float = 0.0
    nonfinite_steps: int = 0
    world_size: int = 1
    upstream: dict[str, torch.Tensor] | None = None  # -f: the upstream's trained tensors
    scheduler: dict[str, Any] | None = None
    task_info: dict[str, Any] | None = None  # the head's label names / dictionary (Predictor.describe)
    grad_scaler: dict[str, Any] | None = None  # --precision fp16: the loss scale and its growth tracker

    def to_dict(self) -> dict[str, Any]:
        data = {_KEYS[name]: getattr(self, name) for name in _KEYS}
        data["Adapter"] = {"spec": self.adapter_spec, "state": self.adapter_state}
        return {key: value for key, value in data.items() if value is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | Path) -> TrainingState:
        missing = [key for key in ("Step", "Args", "Config", "Adapter", "Featurizer", "Downstream") if key not in data]
        if missing:
            raise ConfigError(f"{source} is not an effspeech checkpoint: it has no {', '.join(missing)}")
        values = {name: data[key] for name, key in _KEYS.items() if key in data}
        return cls(adapter_spec=data["Adapter"]["spec"], adapter_state=data["Adapter"]["state"], **values)

    def require_resumable(self, source: str | Path) -> None:
        """A checkpoint to continue training from must carry the optimizer and the RNG states."""
        missing = [key for key, value in (("Optimizer", self.optimizer), ("RNG", self.rng)) if value is None]
        if missing:
            raise ConfigError(f"{source} cannot be resumed: it has no {', '.join(missing)}")


_KEYS = {  # TrainingState field -> key on disk (``Adapter`` holds spec and state)
    "step": "Step",
    "epoch": "Epoch",
    "batch_in_epoch": "BatchInEpoch",
    "wall_time": "WallTime",
    "nonfinite_steps": "NonfiniteSteps",
    "args": "Args",
    "config": "Config",
    "featurizer": "Featurizer",
    "downstream": "Downstream",
    "optimizer": "Optimizer",
    "rng": "RNG",
    "world_size": "WorldSize",
    "upstream": "Upstream",
    "scheduler": "Scheduler",
    "task_info": "TaskInfo",
    "grad_scaler": "GradScaler",
}


def save_state(state: TrainingState, path: str | Path) -> Path:
    return atomic_write(path, torch_bytes(state.to_dict()))


def load_state(path: str | Path) -> TrainingState:
    return TrainingState.from_dict(torch.load(path, map_location="cpu", weights_only=True), path)


def states_name(step: int) -> str:
    return f"states-{step}.ckpt"


def states_checkpoints(expdir: str | Path) -> list[Path]:
    """``states-<step>.ckpt`` files of an experiment, oldest step first."""
    found = [path for path in Path(expdir).glob("states-*.ckpt") if STATES.search(path.name)]
    return sorted(found, key=lambda path: int(STATES.search(path.name).group(1)))


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the latest ``states-*.ckpt`` in a directory (S3PRL's ``-e DIR``)."""
    path = Path(path)
    if path.is_dir():
        found = states_checkpoints(path)
        if not found:
            raise MissingFileError(f"no states-*.ckpt in {path}")
        return found[-1]
    if not path.is_file():
        raise MissingFileError(f"checkpoint {path} does not exist")
    return path


def prune_states(expdir: str | Path, max_keep: int) -> None:
    """Keep the newest ``max_keep`` ``states-*.ckpt``. Called after a save succeeded, so a failed save
    never costs the checkpoint it was meant to replace."""
    found = states_checkpoints(expdir)
    for old in found[: max(0, len(found) - max_keep)]:
        old.unlink()


def best_checkpoint(expdir: str | Path, name: str) -> Path | None:
    """What to evaluate: the recipe's best-dev checkpoint ``name`` (``Task.best_checkpoint``) when it was
    saved, else the newest ``states-*.ckpt``; None when the experiment saved nothing."""
    if Path(expdir, name).is_file():
        return Path(expdir, name)
    periodic = states_checkpoints(expdir)
    return periodic[-1] if periodic else None


# ------------------------------------------------------------------------------------- results.json
@dataclass
class RunInfo:
    """What was run: the top level of results.json, rewritten by every train and evaluate run."""

    task: str
    task_alias: str
    upstream: str
    upstream_ckpt: str | None
    adapter: dict[str, Any]  # the resolved spec
    upstream_trainable: bool
    trainable_params: dict[str, int]  # upstream, featurizer, downstream, total
    expdir: str


@dataclass
class TrainRecord:
    """results.json's ``train`` section: one training run, summed over its resumed sessions."""

    steps: int
    total_steps: int
    resumed_from_step: int | None
    wall_time_s: float
    world_size: int
    metrics: dict[str, dict[str, float]]  # the last evaluation of each split
    history: list[dict[str, Any]]  # every evaluation: step, split, metric, value
    train_loss: list[dict[str, float]]  # the mean loss per log_step
    best_checkpoints: list[str]
    nonfinite_steps_skipped: int
    bad_data: dict[str, Any]
    trainable_digest_per_rank: list[str] | None = None  # written when the run ends
    interrupted: dict[str, Any] | None = None  # signal and step, when the session stopped on a signal
    frozen: dict[str, Any] | None = None  # --cache-frozen/--frozen-eval: the cut, hits, misses, bytes, time
    precision: str = "fp32"


@dataclass
class EvaluateRecord:
    """results.json's ``evaluate`` section: ``-m evaluate`` of one checkpoint."""

    checkpoint: str
    step: int
    split: str
    wall_time_s: float
    metrics: dict[str, dict[str, float]]
    bad_data: dict[str, Any]
    frozen: dict[str, Any] | None = None


def read_results(expdir: str | Path) -> dict[str, Any]:
    """``<expdir>/results.json``, ``{}`` before the first run wrote it."""
    return read_json(Path(expdir, RESULTS))


def write_results(expdir: str | Path, record: TrainRecord | EvaluateRecord, run: RunInfo) -> Path:
    """Merge one run into results.json; ``metrics`` at the top level holds the newest value of every
    split/metric over both sections."""
    section = "train" if isinstance(record, TrainRecord) else "evaluate"
    entry = {key: value for key, value in dataclasses.asdict(record).items() if value is not None}
    results = read_results(expdir)
    results.update(dataclasses.asdict(run))
    results[section] = entry
    merged = results.get("metrics", {})
    for split, values in entry["metrics"].items():
        merged.setdefault(split, {}).update(values)
    results["metrics"] = merged
    return write_json(Path(expdir, RESULTS), results)


def is_evaluated(expdir: str | Path) -> bool:
    """Whether ``-m evaluate`` has reported the experiment's test metric."""
    return "evaluate" in read_results(expdir)


def evaluation(results: dict[str, Any]) -> tuple[str | None, dict[str, float]]:
    """The split ``-m evaluate`` ran on and its metrics (``(None, {})`` before evaluation)."""
    entry = results.get("evaluate", {})
    split = entry.get("split")
    return split, entry.get("metrics", {}).get(split, {})


def trainable_params(results: dict[str, Any]) -> dict[str, int]:
    """``upstream``, ``featurizer``, ``downstream`` and ``total`` trainable parameters of the run."""
    return results.get("trainable_params", {})


def earlier_training(expdir: str | Path, step: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """On resume: the evaluation history and training-loss curve of earlier sessions up to ``step``,
    so that results.json describes the whole run. Missing (results.json deleted): nothing to restore,
    which the caller reports."""
    train = read_results(expdir).get("train", {})
    history = [entry for entry in train.get("history", []) if entry["step"] <= step]
    return history, [entry for entry in train.get("train_loss", []) if entry["step"] <= step]


def average_results(expdirs: list[str | Path]) -> dict[str, Any]:
    """Mean of each split/metric over experiments, e.g. the five IEMOCAP folds of ER (SUPERB's protocol)."""
    runs = []
    for expdir in expdirs:
        if not Path(expdir, RESULTS).is_file():
            raise MissingFileError(f"{Path(expdir, RESULTS)} does not exist: has that experiment run?")
        runs.append(read_results(expdir))
    sums: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        for split, values in run.get("metrics", {}).items():
            for metric, value in values.items():
                sums.setdefault(split, {}).setdefault(metric, []).append(value)
    return {
        "experiments": [str(d) for d in expdirs],
        "metrics": {
            split: {metric: sum(v) / len(v) for metric, v in values.items() if len(v) == len(runs)}
            for split, values in sums.items()
        },
    }


# ------------------------------------------------------------------------------------ progress.json
@dataclass
class Progress:
    """Where a running job is, for whoever watches it (``effspeech leaderboard --status``, the demo)."""

    step: int
    total_steps: int
    phase: str  # "train", or "evaluate <split>"
    updated: float = 0.0

    @property
    def text(self) -> str:
        return f"{self.step}/{self.total_steps}"


class ProgressWriter:
    """Writes ``progress.json`` at most every ``interval`` seconds (always when told to ``force``)."""

    def __init__(self, expdir: str | Path, interval: float = 1.0) -> None:
        self.path = Path(expdir, PROGRESS)
        self.interval = interval
        self._last = 0.0

    def update(self, step: int, total_steps: int, phase: str = "train", force: bool = False) -> None:
        """Best effort: a progress file that cannot be written (a full disk) is not worth stopping a run
        for; the checkpoint written next will say it loudly."""
        now = time.time()
        if force or now - self._last >= self.interval:
            self._last = now
            try:
                write_json(self.path, dataclasses.asdict(Progress(step, total_steps, phase, now)))
            except WriteError as error:
                logger.warning("progress not recorded: %s", error)


def read_progress(expdir: str | Path) -> Progress | None:
    """The job's last reported progress, None before its first step."""
    try:
        data = read_json(Path(expdir, PROGRESS))
    except ConfigError:  # a damaged progress file says nothing about the experiment itself
        return None
    return Progress(**data) if data else None


# --------------------------------------------------------------------------------------------- .lock
LOCK = ".lock"


class ExperimentBusyError(ConfigError):
    """Another live process trains in the experiment directory."""


@dataclass
class LockHolder:
    pid: int
    host: str
    started: float
    command: list[str]

    def __str__(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"pid {self.pid} on {self.host}, since {since} ({' '.join(self.command)})"


class ExperimentLock:
    """One writer per experiment directory: an exclusive ``flock`` on ``<expdir>/.lock``, held for the
    life of the training process, so the kernel releases it whatever way the process ends (the file is
    never deleted, which keeps the lock one inode). The file names the holder (pid, host, start time,
    command) for whoever is refused, and a previous holder's name left in it by a process that died
    without releasing is taken over with a warning. ``-m evaluate`` reads without it."""

    def __init__(self, expdir: str | Path) -> None:
        self.path = Path(expdir, LOCK)
        self._file: Any = None

    def acquire(self, tries: int = 5) -> None:
        file = open(self.path, "a+")  # noqa: SIM115  (held until release())
        for attempt in range(tries):  # a watcher's lock_holder() holds it shared for an instant
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == tries - 1:
                    file.close()
                    holder = _read_holder(self.path)
                    raise ExperimentBusyError(
                        f"{self.path.parent} is in use by {holder or 'another process'}; wait for it to end"
                    ) from None
                time.sleep(0.2)
        previous = _read_holder(self.path)
        if previous is not None:
            logger.warning("taking over %s from %s, which is gone", self.path, previous)
        file.seek(0)
        file.truncate()
        me = LockHolder(os.getpid(), socket.gethostname(), time.time(), sys.argv)
        try:
            file.write(json.dumps(dataclasses.asdict(me)))
            file.flush()
        except OSError as error:  # a full disk: the flock alone still keeps others out
            logger.warning("could not write who holds %s: %s", self.path, error)
        self._file = file

    def release(self) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            self._file.close()  # closing drops the flock
            self._file = None

    def __enter__(self) -> ExperimentLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _read_holder(path: Path) -> LockHolder | None:
    try:
        data = json.loads(path.read_text())
        return LockHolder(int(data["pid"]), str(data["host"]), float(data["started"]), list(data["command"]))
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # no lock file, an empty one (released), or one being written this instant


def lock_holder(expdir: str | Path) -> LockHolder | None:
    """Who trains in ``expdir`` now, None when nobody holds its lock."""
    path = Path(expdir, LOCK)
    if not path.is_file():
        return None
    with open(path) as file:
        try:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(path) or LockHolder(0, "?", 0.0, ["(being written)"])
        fcntl.flock(file, fcntl.LOCK_UN)
    return None


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs: a killed one its parent has not reaped yet (a zombie)
    does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no procfs: the signal check is all there is
        return True
    return state not in ("Z", "X")
