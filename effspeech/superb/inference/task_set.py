"""``load_tasks(ckpts)``: several task checkpoints on ONE upstream in memory, each costing only its adapters,
featurizer and head.

Every adapter method any task uses is attached once; a task's turn activates its methods only
(``AdapterSet.activate``: no hook is added or removed) and copies its tensors into them where another
task used the same method last. Weighted-sum tasks (``none``) run with every method inactive, the bare
upstream, and share one upstream forward when predicted together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from effspeech.engine import AdapterSet
from effspeech.errors import ConfigError
from effspeech.superb import records
from effspeech.superb.audio import SAMPLE_RATE
from effspeech.superb.inference.task_model import TaskHead, TaskModel, checkpoint_args, load_checkpoint, load_head
from effspeech.superb.inference.waves import Wave
from effspeech.superb.tasks import get_task
from effspeech.superb.trainer.pipeline import build_upstream
from effspeech.superb.upstream import checkpoint_identity


class TaskSet:
    """Named tasks on one upstream; ``predict(waves, task=NAME)``, or every task at once."""

    def __init__(
        self,
        model: TaskModel,
        parts: dict[str, TaskHead],
        methods: dict[str, list[str]],
        states: dict[str, dict[str, torch.Tensor]],
    ) -> None:
        self.model = model  # holds the upstream and the adapters of every task
        self.parts = parts
        self.methods = methods  # task -> the adapter methods it trained (none: a weighted-sum task)
        self._states = states  # task -> its adapter tensors
        self._loaded: dict[str, str] = {}  # method -> the task whose tensors it holds now

    @property
    def tasks(self) -> list[str]:
        return list(self.parts)

    @property
    def adapters(self) -> AdapterSet | None:
        return self.model.adapters

    def use(self, task: str) -> None:
        """Make ``task``'s adapters the active ones: activate its methods, copy its tensors where needed."""
        if task not in self.parts:
            raise ConfigError(f"no task {task!r} here; loaded: {', '.join(self.parts)}")
        self.model.part = self.parts[task]
        if self.adapters is None:
            return
        state = self._states[task]
        self.adapters.activate(self.methods[task])
        stale = {key: value for key, value in state.items() if self._loaded.get(key.split(".", 1)[0]) != task}
        if stale:
            self.adapters.load_state_dict(stale, partial=True)
            self._loaded.update({key.split(".", 1)[0]: task for key in stale})

    @torch.no_grad()
    def predict(
        self,
        waves: Sequence[Wave],
        task: str | None = None,
        sample_rate: int = SAMPLE_RATE,
        batch_size: int = 8,
        scores: bool = False,
        in_order: bool = False,
    ) -> list | dict[str, list]:
        """``task``'s predictions, one per wave; with ``task=None`` a dict of every task's, in which the
        weighted-sum tasks share one upstream forward per batch."""
        if task is not None:
            self.use(task)
            return self.model.predict(waves, sample_rate, batch_size, scores, in_order)
        results = {}
        shared = [
            name for name in self.parts if not self.methods[name] and not self.parts[name].predictor.per_recording
        ]
        if len(shared) > 1:
            results.update(self._predict_shared(shared, waves, sample_rate, batch_size, scores, in_order))
        for name in self.parts:
            if name not in results:
                self.use(name)
                results[name] = self.model.predict(waves, sample_rate, batch_size, scores, in_order)
        return {name: results[name] for name in self.parts}

    def _predict_shared(
        self, names: list[str], waves: Sequence[Wave], sample_rate: int, batch_size: int, scores: bool, in_order: bool
    ) -> dict[str, list]:
        """Weighted-sum tasks whose recipes read waves alike: one upstream forward, every head on it."""
        self.use(names[0])
        by_effects: dict[str, list[str]] = {}
        for name in names:
            by_effects.setdefault(repr(self.parts[name].predictor.effects()), []).append(name)
        results: dict[str, list] = {name: [{} for _ in waves] for name in names}
        for group in by_effects.values():
            self.model.part = self.parts[group[0]]
            prepared = [self.model.prepare(wave, sample_rate, f"wave {i}") for i, wave in enumerate(waves)]
            for indices, batch in self.model.batches(prepared, batch_size, in_order):
                batch = self.model.on_device(batch)
                states = self.model.states(batch)
                for name in group:
                    for index, prediction in zip(indices, self.parts[name].predict(batch, states, scores)):
                        results[name][index] = prediction
        return results


def load_tasks(ckpts: Sequence[str | Path] | Mapping[str, str | Path], device: str = "cpu") -> TaskSet:
    """Task checkpoints trained on the same upstream checkpoint, on one copy of it. A list names each task
    by its alias (``ks``); a mapping names them itself (two KS checkpoints, say)."""
    pairs = list(ckpts.items()) if isinstance(ckpts, Mapping) else [(None, ckpt) for ckpt in ckpts]
    if not pairs:
        raise ConfigError("load_tasks needs at least one checkpoint")
    states, sources = {}, {}
    for name, ckpt in pairs:
        path, state = load_checkpoint(ckpt)
        name = name or get_task(checkpoint_args(state, device).downstream).alias
        if name in states:
            raise ConfigError(f"two checkpoints for {name!r} ({sources[name]}, {path}): name them, load_tasks({{...}})")
        states[name], sources[name] = state, path
    _check_one_upstream(states, sources)
    spec = _union_spec(states, sources)
    first = next(iter(states.values()))
    args = checkpoint_args(first, device)
    upstream, adapters = build_upstream(args, spec)
    parts, methods, tensors = {}, {}, {}
    for name, state in states.items():
        if adapters is not None:
            adapters.activate(sorted(state.adapter_spec))  # the featurizer's size is the task's own
        parts[name] = load_head(state, checkpoint_args(state, device), upstream, str(sources[name]))
        methods[name], tensors[name] = sorted(state.adapter_spec), state.adapter_state
    model = TaskModel(upstream, adapters, next(iter(parts.values())))
    task_set = TaskSet(model, parts, methods, tensors)
    task_set.use(next(iter(parts)))
    return task_set


def _check_one_upstream(states: dict[str, records.TrainingState], sources: dict[str, Path]) -> None:
    identities = {name: checkpoint_identity(state.args) for name, state in states.items()}
    first = next(iter(identities))
    for name, identity in identities.items():
        if identity != identities[first]:
            raise ConfigError(
                f"{sources[name]} was trained on {identity}, {sources[first]} on {identities[first]}: "
                "load_tasks shares one upstream, so every task must come from the same upstream checkpoint"
            )
        if states[name].upstream is not None:
            raise ConfigError(f"{sources[name]} fine-tuned its upstream (-f): load it on its own, with load_task")


def _union_spec(states: dict[str, records.TrainingState], sources: dict[str, Path]) -> dict:
    """Every method of every task, once; two tasks may share a method only with the same settings."""
    union: dict = {}
    owner: dict[str, str] = {}
    for name, state in states.items():
        for method, config in state.adapter_spec.items():
            if method in union and union[method] != config:
                raise ConfigError(
                    f"{sources[owner[method]]} ({owner[method]}) and {sources[name]} ({name}) both use {method} "
                    "but with different settings "
                    f"({union[method]} vs {config}): one upstream holds one {method}; load them separately"
                )
            union.setdefault(method, config)
            owner.setdefault(method, name)
    return union
