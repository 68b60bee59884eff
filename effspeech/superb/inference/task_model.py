"""``load_task(ckpt)``: what ``run_downstream.py -m train`` trained, as a model that predicts recordings.

The upstream is rebuilt as ``-m evaluate`` rebuilds it (``-u``/``-k`` and the adapter spec from the
checkpoint), the recipe's head from the checkpoint alone, through its task's ``Predictor``: the corpus
it was trained on need not be present. Waves are batched longest first, so that little of a batch is
padding; as in S3PRL, padding changes the features of upstreams whose CNN normalises over time (HuBERT
and wav2vec 2.0 Base), so ``in_order=True`` batches consecutive waves as a recipe's test loader does
(what ``-m evaluate`` reports), and ``batch_size=1`` makes each prediction independent of the others
(docs/inference.md)."""

from __future__ import annotations

import tempfile
from argparse import Namespace
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from effspeech.engine import AdapterSet
from effspeech.errors import ConfigError
from effspeech.superb import records
from effspeech.superb.audio import SAMPLE_RATE
from effspeech.superb.inference.waves import Wave, prepare
from effspeech.superb.tasks import Task, get_task
from effspeech.superb.tasks.prediction import Labels, Prediction, Predictor
from effspeech.superb.trainer.pipeline import (
    build_downstream,
    build_featurizer,
    build_upstream,
    has_cnn_extractor,
    load_trained,
    upstream_states,
)


class TaskHead(nn.Module):
    """One task's trained part past the upstream: S3PRL's featurizer and the recipe's head, with what its
    ``Predictor`` needs to read them."""

    def __init__(self, task: Task, featurizer: nn.Module, head: nn.Module, info: dict[str, Any]) -> None:
        super().__init__()
        self.task, self.featurizer, self.head, self.info = task, featurizer, head, info
        self.predictor: Predictor = task.predictor
        self.eval().requires_grad_(False)

    def predict(
        self, waves: list[torch.Tensor], states: Any, scores: bool
    ) -> list[Prediction]:  # the upstream's output for ``waves``, one batch (SD: one recording's pieces)
        return self.predictor.decode(self.head, self.featurizer(waves, states), waves, self.info, scores)


class TaskModel(nn.Module):
    """Upstream + adapters + featurizer + head of one checkpoint, in eval mode, without gradients."""

    def __init__(self, upstream: nn.Module, adapters: AdapterSet | None, part: TaskHead) -> None:
        super().__init__()
        self.upstream, self.part = upstream, part
        self.adapters = adapters
        self._has_cnn = has_cnn_extractor(upstream)
        self.eval().requires_grad_(False)

    @property
    def task(self) -> str:
        return self.part.task.alias

    @property
    def labels(self) -> Labels | None:
        return self.part.predictor.labels(self.part.info)

    def merge(self) -> None:
        """Fold mergeable adapters (LoRA, DoRA, IA3, CNN) into the upstream: inference at its bare cost."""
        if self.adapters is not None:
            self.adapters.merge()

    @torch.no_grad()
    def predict(
        self,
        waves: Sequence[Wave],
        sample_rate: int = SAMPLE_RATE,
        batch_size: int = 8,
        scores: bool = False,
        in_order: bool = False,
    ) -> list[Prediction]:
        """One prediction per wave (1-D, or channels x samples, at ``sample_rate``), in the order given:
        ``{"label": ...}`` for KS, IC, SID and ER (with ``"scores"``, the class probabilities),
        ``{"text": ...}`` for ASR, ``{"segments": [...]}`` for SD."""
        prepared = [self.prepare(wave, sample_rate, f"wave {i}") for i, wave in enumerate(waves)]
        return self.predict_prepared(prepared, batch_size, scores, in_order)

    def prepare(self, wave: Wave, sample_rate: int, name: str) -> torch.Tensor:
        """``wave`` as this task's recipe reads it (mono, 16 kHz, its effects); ``BadAudioError`` naming
        ``name`` where it cannot be predicted."""
        prepared = prepare(wave, sample_rate, self.part.predictor.effects(), name)
        self.part.predictor.check(self.part.head, prepared, name)
        return prepared

    def predict_prepared(
        self, waves: list[torch.Tensor], batch_size: int, scores: bool, in_order: bool = False
    ) -> list[Prediction]:
        """``predict`` for waves already at 16 kHz with the recipe's effects applied."""
        predictions: list[Prediction] = [{} for _ in waves]
        for indices, batch in self.batches(waves, batch_size, in_order):
            for index, prediction in zip(indices, self._run(batch, scores)):
                predictions[index] = prediction
        return predictions

    def batches(
        self, waves: list[torch.Tensor], batch_size: int, in_order: bool = False
    ) -> list[tuple[list[int], list[torch.Tensor]]]:
        """(indices into ``waves``, the batch): ``batch_size`` waves, longest first unless ``in_order``;
        for SD, one recording's pieces as the recipe cuts them."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        predictor = self.part.predictor
        if predictor.per_recording:
            return [([i], predictor.split(self.part.head, wave)) for i, wave in enumerate(waves)]
        order = sorted(range(len(waves)), key=lambda i: -len(waves[i])) if not in_order else list(range(len(waves)))
        chunks = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        return [(chunk, [waves[i] for i in chunk]) for chunk in chunks]

    def states(self, batch: list[torch.Tensor]) -> Any:
        """The upstream's hidden states for one batch (moved to the model's device), as the trainer computes them."""
        return upstream_states(self.upstream, batch, self._has_cnn)

    def on_device(self, batch: list[torch.Tensor]) -> list[torch.Tensor]:
        device = self.device
        return [wave.to(device) for wave in batch]

    def _run(self, batch: list[torch.Tensor], scores: bool) -> list[Prediction]:
        batch = self.on_device(batch)
        return self.part.predict(batch, self.states(batch), scores)

    @property
    def device(self) -> torch.device:
        return next(self.upstream.parameters()).device


def load_task(ckpt: str | Path, device: str = "cpu", merge: bool = False) -> TaskModel:
    """The task model of a checkpoint (``dev-best.ckpt``, ``states-*.ckpt`` or an experiment directory)."""
    path, state = load_checkpoint(ckpt)
    args = checkpoint_args(state, device)
    upstream, adapters = build_upstream(args, state.adapter_spec)
    part = load_head(state, args, upstream, str(path))
    load_trained(state, upstream, adapters)
    model = TaskModel(upstream, adapters, part)
    if merge:
        model.merge()
    return model


def load_checkpoint(ckpt: str | Path) -> tuple[Path, records.TrainingState]:
    """A checkpoint file, or an experiment directory's best-dev checkpoint (the one ``-m evaluate`` is
    given; its newest ``states-*.ckpt`` where the recipe saved none), and its state."""
    path = records.resolve_checkpoint(ckpt)
    state = records.load_state(path)
    if Path(ckpt).is_dir():
        best = records.best_checkpoint(ckpt, get_task(state.args["downstream"]).best_checkpoint)
        if best is not None and best != path:
            path, state = best, records.load_state(best)
    return path, state


def checkpoint_args(state: records.TrainingState, device: str) -> Namespace:
    args = Namespace(**state.args)
    args.device = device
    task = get_task(args.downstream)
    if task.predictor is None:
        raise ConfigError(f"effspeech predicts the SUPERB tasks (ks, ic, sid, er, asr, sd), not {args.downstream!r}")
    return args


def load_head(state: records.TrainingState, args: Namespace, upstream: nn.Module, source: str) -> TaskHead:
    """The featurizer and head of ``state`` on ``upstream`` (whose adapters decide the feature size)."""
    task = get_task(args.downstream)
    featurizer = build_featurizer(args, upstream)
    featurizer.load_state_dict(state.featurizer)
    info = state.task_info if state.task_info is not None else _describe_old(state, args, featurizer, source)
    with tempfile.TemporaryDirectory() as workdir:  # what a recipe head writes while it is built
        head = task.predictor.build(
            state.config, featurizer.output_dim, featurizer.downsample_rate, info, Path(workdir)
        )
    try:
        head.load_state_dict(state.downstream)
    except RuntimeError as error:
        raise ConfigError(f"{source}: the {task.alias} head does not fit its saved tensors: {error}") from None
    return TaskHead(task, featurizer.to(args.device), head.to(args.device), info)


def _describe_old(state: records.TrainingState, args: Namespace, featurizer: nn.Module, source: str) -> dict[str, Any]:
    """A checkpoint from before ``TaskInfo``: its label names are read off the recipe's head, built on the
    corpus its config names."""
    task = get_task(args.downstream)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            recipe = build_downstream(Namespace(**{**vars(args), "expdir": workdir}), state.config, featurizer)
    except (OSError, KeyError, IndexError, ValueError) as error:
        raise ConfigError(
            f"{source} predates the label names effspeech saves with each checkpoint, and the {task.alias} data "
            f"its config names cannot be read to recover them ({error}); train it again, or run it where the data is"
        ) from None
    return task.predictor.describe(recipe, state.config)
