"""The grid: which cells (upstream x method x task [x fold] [x learning rate] [x seed]) exist, the presets
that say how long each trains, and the exact ``run_downstream.py`` commands a cell runs."""

from __future__ import annotations

import math
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from effspeech.errors import ConfigError, UnknownNameError
from effspeech.superb.methods import all_methods
from effspeech.superb.tasks import ALIASES, Budget, Task, by_alias
from effspeech.superb.trainer.config import load_config


@dataclass(frozen=True)
class Cell:
    upstream: str
    method: str
    task: str  # alias: ks, ic, sid, er, asr, sd
    fold: int | None = None  # the fold of a task SUPERB cross-validates (ER: the IEMOCAP test session)
    lr: float | None = None  # the method's learning rate, one of --lrs (None: the preset's or the config's)
    seed: int | None = None  # the training seed, one of --seeds (None: the grid's one --seed)

    @property
    def name(self) -> str:
        fold = f"/fold{self.fold}" if self.fold is not None else ""
        lr = f"/lr{self.lr:g}" if self.lr is not None else ""
        seed = f"/seed{self.seed}" if self.seed is not None else ""
        return f"{self.upstream}/{self.method}/{self.task}{fold}{lr}{seed}"

    def expdir(self, out: Path) -> Path:
        return out / self.name


def cpu_settings(task: Task) -> dict[str, object]:
    """What every task of the CPU presets changes in its SUPERB recipe to train a few hundred steps on one
    CPU core: one optimizer update per batch (SID, ER and SD accumulate 4-8 batches in SUPERB), learning
    rates ten times SUPERB's for the head and for fine-tuning (adapters keep theirs), and no loader
    processes. Each task's own changes (dev-only evaluation, shorter inputs) are its ``Task.cpu`` budget."""
    return {
        "runner.gradient_accumulate_steps": 1,
        "optimizer.lr": 1.0e-3,
        "adapter.finetune.lr": 1.0e-4,
        f"downstream_expert.{task.data_section}.num_workers": 0,
    }


@dataclass(frozen=True)
class Preset:
    """How long each task trains and where the data and upstream come from."""

    name: str
    protocol: str  # "superb": each task's SUPERB budget; "cpu": its CPU budget and cpu_settings; "uniform"
    offline: bool  # embedded upstreams and generated Mini-SUPERB data
    corpus: str | None = None  # the Mini-SUPERB size an offline preset generates
    batch_size: int | None = None  # every task's training batch (None: the recipe's)
    steps: int | None = None  # every task's training steps (None: its budget's)
    eval_every: int | None = None  # every task's evaluation (and save) interval (None: its budget's)
    folds: int | None = None  # folds of a cross-validated task (None: all of them)
    method_rates: Mapping[str, float] = field(default_factory=dict)  # method -> lr of its tensors (else the config's)

    def budget(self, task: Task) -> Budget:
        if self.protocol == "uniform":
            return Budget(self.steps, self.eval_every)
        base = {"superb": task.superb, "cpu": task.cpu}[self.protocol]
        if base is None:
            raise ConfigError(f"task {task.alias!r} has no Task.{self.protocol} budget for the {self.name} preset")
        return Budget(self.steps or base.steps, self.eval_every or base.eval_every, base.config)

    def default_rate(self, task: Task, method: str) -> float:
        """The learning rate a ``method`` cell of ``task`` trains its tensors at without ``--lrs``."""
        if method in self.method_rates:
            return float(self.method_rates[method])
        settings = cpu_settings(task) if self.protocol == "cpu" else {}
        if f"adapter.{method}.lr" in settings:
            return float(settings[f"adapter.{method}.lr"])
        config = load_config(task.config_path())
        rate = ((config.get("adapter") or {}).get(method) or {}).get("lr")
        return float(rate if rate is not None else settings.get("optimizer.lr", config["optimizer"]["lr"]))

    def overrides(self, task: Task) -> str:
        budget = self.budget(task)
        parts = [
            f"config.runner.total_steps={budget.steps}",
            f"config.runner.eval_step={budget.eval_every}",
            f"config.runner.save_step={budget.eval_every}",
            f"config.runner.log_step={max(1, budget.eval_every // 2)}",
        ]
        if self.batch_size is not None:
            parts += [f"config.downstream_expert.{key}={self.batch_size}" for key in task.train_batch_keys]
        settings = {**(cpu_settings(task) if self.protocol == "cpu" else {}), **budget.config}
        parts += [f"config.{key}={value}" for key, value in settings.items()]
        return ",,".join(parts)


PRESETS = {
    "smoke": Preset("smoke", "uniform", offline=True, corpus="tiny", batch_size=4, steps=4, eval_every=4, folds=1),
    # method_rates: the best mean dev accuracy on KS and SID of benchmarks/lr_sweep.py (docs/leaderboard.md)
    "mini": Preset(
        "mini",
        "cpu",
        offline=True,
        corpus="small",
        batch_size=8,
        method_rates={
            "houlsby": 3e-3,
            "adapterbias": 3e-3,
            "bitfit": 1e-2,
            "lora": 3e-3,
            "prefix": 1e-2,
            "prompt": 1e-2,
            "cnn": 3e-3,
            "dora": 1e-3,
            "ia3": 3e-2,
            "parallel": 3e-3,
            "lnfit": 1e-2,
            "elp": 1e-4,
        },
    ),
    "superb": Preset("superb", "superb", offline=False),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UnknownNameError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name]


AUTO = "auto"
AUTO_DECADES = (-0.5, 0.0, 0.5)  # --lrs auto: half a decade below and above each method's own rate


def auto_rates(rate: float) -> list[float]:
    """A small log-scale sweep on the 1-3-10 grid around ``rate`` (1e-3: 3e-4, 1e-3, 3e-3; 2.5e-2: 1e-2,
    3e-2, 1e-1)."""
    center = round(2 * math.log10(rate)) / 2
    return [float(f"{10 ** (center + decades):.1g}") for decades in AUTO_DECADES]


def build_cells(
    upstreams: list[str],
    methods: list[str],
    tasks: list[str],
    preset: Preset,
    lrs: list[float] | str | None = None,
    seeds: list[int] | None = None,
) -> list[Cell]:
    """Every cell; with ``lrs`` each method but ``none`` (which trains no upstream tensor) once per rate
    (``"auto"``: ``auto_rates`` of its rate on that task), with ``seeds`` every cell once per seed."""
    known = all_methods()
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise UnknownNameError(f"unknown method(s) {unknown}; valid: {', '.join(known)}")
    bad_tasks = [t for t in tasks if t not in ALIASES]
    if bad_tasks:
        raise UnknownNameError(f"unknown task(s) {bad_tasks}; valid: {', '.join(ALIASES)}")
    cells = []
    for upstream in upstreams:
        for method in methods:
            for alias in tasks:
                folds = by_alias(alias).folds
                chosen = range(1, min(folds, preset.folds or folds) + 1) if folds > 1 else [None]
                rates = lrs if lrs and method != "none" else [None]
                if rates == AUTO:
                    rates = auto_rates(preset.default_rate(by_alias(alias), method))
                cells.extend(
                    Cell(upstream, method, alias, fold, lr, seed)
                    for fold in chosen
                    for lr in rates
                    for seed in seeds or [None]
                )
    return cells


@dataclass(frozen=True)
class Launch:
    """Everything a cell's commands need besides the cell and its directory."""

    preset: Preset
    checkpoints: dict[str, str | None]  # upstream -> -k path (None: the entry's own default)
    data_root: str | None
    launcher: str = "local"
    nproc: int = 1
    seed: int = 1337
    cache: str | None = None  # --cache-frozen DIR of every cell with a frozen part (None: --no-cache)
    cache_size: str | None = None

    def run_downstream(self) -> list[str]:
        """How this machine starts ``run_downstream.py`` (the installed module, so any directory works)."""
        torchrun = ["-m", "torch.distributed.run", f"--nproc_per_node={self.nproc}"]
        return [sys.executable, *(torchrun if self.launcher == "torchrun" else []), "-m", "run_downstream"]

    def train_args(self, cell: Cell, expdir: Path, resume: bool) -> list[str]:
        """``run_downstream.py``'s arguments to train ``cell`` in ``expdir`` (``-a``: resume its latest checkpoint)."""
        task = by_alias(cell.task)
        seed = self.seed if cell.seed is None else cell.seed
        args = ["-m", "train", "-u", cell.upstream, "-d", cell.task, "-p", str(expdir), "--seed", str(seed)]
        overrides = self.preset.overrides(task)
        if cell.fold is not None:
            overrides += f",,{task.fold_override(cell.fold)}"
        rate = self.preset.method_rates.get(cell.method) if cell.lr is None else cell.lr
        if rate is not None:
            overrides += f",,config.adapter.{cell.method}.lr={rate}"
        args += ["-o", overrides]
        if self.checkpoints.get(cell.upstream):
            args += ["-k", str(self.checkpoints[cell.upstream])]
        args += ["-f", "--adapter", "none"] if cell.method == "finetune" else ["--adapter", cell.method]
        if self.data_root:
            args += ["--data-root", self.data_root]
        if cell.method != "finetune":  # -f leaves nothing frozen
            args += self.cache_flags()
        if resume:
            args.append("-a")
        return args

    def train_command(self, cell: Cell, expdir: Path, resume: bool) -> list[str]:
        return [*self.run_downstream(), *self.train_args(cell, expdir, resume)]

    def cache_flags(self) -> list[str]:
        if not self.cache:
            return []
        return ["--cache-frozen", self.cache, *(["--cache-size", self.cache_size] if self.cache_size else [])]

    def evaluate_command(self, checkpoint: Path) -> list[str]:
        """The test split of ``checkpoint``; it reads the frozen part from the cache where its training did."""
        return [sys.executable, "-m", "run_downstream", "-m", "evaluate", "-e", str(checkpoint), *self.cache_flags()]

    def shell_line(self, cell: Cell, expdir: Path) -> str:
        """One line per cell for a cluster scheduler: train, then evaluate the best dev checkpoint."""
        train = shlex.join(self.train_command(cell, expdir, resume=False))
        best = expdir / by_alias(cell.task).best_checkpoint
        return f"{train} && {shlex.join(self.evaluate_command(best))}"
