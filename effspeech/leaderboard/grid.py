"""The grid: which cells (upstream x method x task [x fold]) exist and the exact commands each runs."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from effspeech.trainer.tasks import ALIASES

RUN_DOWNSTREAM = Path(__file__).resolve().parents[2] / "run_downstream.py"
METHODS = ("none", "finetune", "houlsby", "adapterbias", "bitfit", "lora", "prefix", "prompt", "cnn")
ER_FOLDS = 5
# The checkpoint each S3PRL recipe saves for its best dev score.
BEST_CHECKPOINT = {"asr": "dev-clean-best.ckpt", "sd": "best-states-dev.ckpt"}


@dataclass(frozen=True)
class Cell:
    upstream: str
    method: str
    task: str  # alias: ks, ic, sid, er, asr, sd
    fold: int | None = None  # IEMOCAP test session (er only)

    @property
    def name(self) -> str:
        fold = f"/fold{self.fold}" if self.fold is not None else ""
        return f"{self.upstream}/{self.method}/{self.task}{fold}"

    def expdir(self, out: Path) -> Path:
        return out / self.name


@dataclass(frozen=True)
class Preset:
    """How long each task trains, how the data and upstream are found, and what else the budget changes."""

    name: str
    steps: dict[str, int]
    eval_every: dict[str, int]
    er_folds: int
    offline: bool  # embedded upstreams and generated Mini-SUPERB data
    batch_size: int | None = None  # every task's training batch (None: the recipe's)
    config: dict[str, dict[str, object]] = field(default_factory=dict)  # task -> {config path: value}

    def overrides(self, task: str) -> str:
        runner = self.steps[task], self.eval_every[task]
        parts = [
            f"config.runner.total_steps={runner[0]}",
            f"config.runner.eval_step={runner[1]}",
            f"config.runner.save_step={runner[1]}",
            f"config.runner.log_step={max(1, runner[1] // 2)}",
        ]
        if self.batch_size is not None:
            parts += [f"config.downstream_expert.{key}={self.batch_size}" for key in TRAIN_BATCH_KEYS[task]]
        parts += [f"config.{key}={value}" for key, value in self.config.get(task, {}).items()]
        return ",,".join(parts)


TASKS = ("ks", "ic", "sid", "er", "asr", "sd")
# Where each task's config keeps its training batch size (the recipes name it differently).
TRAIN_BATCH_KEYS = {
    "ks": ["datarc.batch_size"],
    "ic": ["datarc.train_batch_size"],
    "sid": ["datarc.train_batch_size"],
    "er": ["datarc.train_batch_size"],
    "asr": ["datarc.train_batch_size", "datarc.batch_size"],
    "sd": ["loaderrc.train_batchsize"],
}


def cpu_budget(task: str) -> dict[str, object]:
    """What ``mini`` changes in a SUPERB recipe to train a few hundred steps on one CPU core per cell.

    One optimizer update per batch (SID, ER and SD accumulate 4-8 batches in SUPERB), learning rates ten
    times SUPERB's for the head and for fine-tuning (adapters keep theirs), no loader processes, dev-only
    evaluation during training (the test split is read once, on the best dev checkpoint), and for the
    long-input tasks shorter inputs: 2 s SID crops, 5 s SD chunks and a 256-unit ASR BiLSTM."""
    loader = "loaderrc" if task == "sd" else "datarc"
    config: dict[str, object] = {
        "runner.gradient_accumulate_steps": 1,
        "optimizer.lr": 1.0e-3,
        "adapter.finetune.lr": 1.0e-4,
        f"downstream_expert.{loader}.num_workers": 0,
    }
    if task in ("ks", "ic", "sid", "er"):
        config["runner.eval_dataloaders"] = "['dev']"
    if task == "sid":
        config["downstream_expert.datarc.max_timestep"] = 32000
    if task == "sd":
        config["downstream_expert.datarc.chunk_size"] = 500
    if task == "asr":
        config["downstream_expert.modelrc.project_dim"] = 256
        config["downstream_expert.modelrc.RNNs.dim"] = "[256,256]"
    return config


PRESETS = {
    "smoke": Preset("smoke", dict.fromkeys(TASKS, 4), dict.fromkeys(TASKS, 4), er_folds=1, offline=True, batch_size=4),
    "mini": Preset(
        "mini",
        # IC needs 1000 steps: at 300 every frozen upstream's weighted sum is still near chance.
        {"ks": 400, "ic": 1000, "sid": 300, "er": 100, "asr": 200, "sd": 150},
        {"ks": 200, "ic": 200, "sid": 150, "er": 100, "asr": 100, "sd": 75},
        er_folds=ER_FOLDS,
        offline=True,
        batch_size=8,
        config={task: cpu_budget(task) for task in TASKS},
    ),
    "superb": Preset(
        "superb",
        {"ks": 200000, "ic": 200000, "sid": 200000, "er": 30000, "asr": 200000, "sd": 30000},
        {"ks": 5000, "ic": 5000, "sid": 10000, "er": 1000, "asr": 2000, "sd": 1000},
        er_folds=ER_FOLDS,
        offline=False,
    ),
}


def build_cells(upstreams: list[str], methods: list[str], tasks: list[str], preset: Preset) -> list[Cell]:
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; valid: {', '.join(METHODS)}")
    bad_tasks = [t for t in tasks if t not in ALIASES]
    if bad_tasks:
        raise ValueError(f"unknown task(s) {bad_tasks}; valid: {', '.join(ALIASES)}")
    cells = []
    for upstream in upstreams:
        for method in methods:
            for task in tasks:
                folds = range(1, preset.er_folds + 1) if task == "er" else [None]
                cells.extend(Cell(upstream, method, task, fold) for fold in folds)
    return cells


@dataclass(frozen=True)
class Launch:
    """Everything a cell's commands need besides the cell itself."""

    out: Path
    preset: Preset
    checkpoints: dict[str, str | None]  # upstream -> -k path (None: the entry's own default)
    data_root: str | None
    launcher: str = "local"
    nproc: int = 1
    seed: int = 1337

    def python(self) -> list[str]:
        if self.launcher == "torchrun":
            return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={self.nproc}"]
        return [sys.executable]

    def train_command(self, cell: Cell, resume: bool) -> list[str]:
        command = [*self.python(), str(RUN_DOWNSTREAM), "-m", "train", "-u", cell.upstream, "-d", cell.task]
        command += ["-p", str(cell.expdir(self.out)), "--seed", str(self.seed)]
        overrides = self.preset.overrides(cell.task)
        if cell.fold is not None:  # S3PRL's emotion recipe picks its test session here (-v is something else)
            overrides += f",,config.downstream_expert.datarc.test_fold=fold{cell.fold}"
        command += ["-o", overrides]
        if self.checkpoints.get(cell.upstream):
            command += ["-k", str(self.checkpoints[cell.upstream])]
        if cell.method == "finetune":
            command += ["-f", "--adapter", "none"]
        else:
            command += ["--adapter", cell.method]
        if self.data_root:
            command += ["--data-root", self.data_root]
        if resume:
            command.append("-a")
        return command

    def evaluate_command(self, cell: Cell, checkpoint: str | None = None) -> list[str]:
        checkpoint = checkpoint or BEST_CHECKPOINT.get(cell.task, "dev-best.ckpt")
        path = cell.expdir(self.out) / checkpoint
        return [sys.executable, str(RUN_DOWNSTREAM), "-m", "evaluate", "-e", str(path)]

    def shell_line(self, cell: Cell) -> str:
        """One line per cell for a cluster scheduler: train, then evaluate the best dev checkpoint."""
        train = shlex.join(self.train_command(cell, resume=False))
        return f"{train} && {shlex.join(self.evaluate_command(cell))}"
