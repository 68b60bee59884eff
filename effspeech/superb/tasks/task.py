"""What a task is: everything effspeech needs to know about one S3PRL downstream recipe."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effspeech.errors import ConfigError, MissingFileError
from effspeech.superb.audio import Entry, Problem
from effspeech.superb.tasks.prediction import Predictor

# The configs ship beside the package (``downstream/`` at the top level of the checkout and the wheel).
SHIPPED_CONFIGS = Path(__file__).resolve().parents[3] / "downstream"

Lister = Callable[[dict[str, Any]], Iterator[Entry | Problem]]


@dataclass(frozen=True)
class Budget:
    """How long a task trains under one protocol, and what else that protocol changes in its config."""

    steps: int
    eval_every: int
    config: Mapping[str, object] = field(default_factory=dict)  # config path (after ``config.``) -> value


@dataclass(frozen=True)
class Task:
    name: str  # the s3prl.downstream package, and the folder of its config
    alias: str  # what -d takes besides the name
    test_split: str  # what -m evaluate reports by default
    metric: str  # the headline metric the recipe logs
    higher_is_better: bool
    in_percent: bool = False  # the recipe logs it as 0-100 (ASR's WER), not as a fraction
    data_keys: Mapping[str, str] = field(default_factory=dict)  # key under downstream_expert -> path in Mini-SUPERB
    train_batch_keys: tuple[str, ...] = ()  # keys under downstream_expert holding the training batch size
    best_checkpoint: str = "dev-best.ckpt"  # what the recipe saves for its best dev score
    converts_audio: bool = False  # the recipe's reader down-mixes and resamples to 16 kHz itself
    folds: int = 1  # cross-validation folds SUPERB averages (ER: 5)
    fold_key: str | None = None  # key under downstream_expert choosing the fold, set to "fold<k>"
    list_audio: Lister | None = None  # the files the recipe reads, and metadata faults (check-data)
    prepare: Callable[[Path, int], None] | None = None  # (expdir, rank) before the recipe is imported
    skip_settings: Mapping[str, object] = field(default_factory=dict)  # config under runner.on_bad_data: skip
    salvage: Callable[[Any, int, str], bool] | None = None  # take one bad file out of an item, if it can
    predictor: Predictor | None = None  # how a trained head is rebuilt and read (effspeech predict)
    superb: Budget | None = None  # SUPERB's protocol
    cpu: Budget | None = None  # a few hundred steps on one CPU core (the mini preset)

    @property
    def data_section(self) -> str:
        """The config section (under downstream_expert) with the data and loader settings."""
        return next(iter(self.data_keys), "datarc.").split(".")[0]

    def config_path(self) -> Path:
        """``./downstream/<name>/config.yaml`` when it exists (S3PRL's rule), else the shipped one."""
        for path in (Path("downstream", self.name, "config.yaml"), SHIPPED_CONFIGS / self.name / "config.yaml"):
            if path.is_file():
                return path
        raise MissingFileError(f"no config for the {self.name!r} recipe: pass one with -c PATH")

    def fill_data_paths(self, config: dict[str, Any], data_root: str | Path) -> dict[str, str]:
        """Point the data keys at the sub-directories of a Mini-SUPERB ``data_root``; return what was set."""
        if not self.data_keys:
            raise ConfigError(f"--data-root fills the data keys of the SUPERB tasks only, not of {self.name!r}")
        expert = config.setdefault("downstream_expert", {})
        filled = {}
        for key, relative in self.data_keys.items():
            section, name = key.split(".")
            path = str(Path(data_root, relative).resolve())  # absolute: evaluation may run from elsewhere
            expert.setdefault(section, {})[name] = path
            filled[f"downstream_expert.{key}"] = path
        return filled

    def fold_override(self, fold: int) -> str:
        """The ``-o`` item that makes the recipe test on ``fold`` (S3PRL's ``-v`` is something else)."""
        if self.fold_key is None:
            raise ConfigError(f"{self.alias} has no folds")
        return f"config.downstream_expert.{self.fold_key}=fold{fold}"
