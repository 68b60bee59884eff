"""What a task predicts for a recording. A trained head is rebuilt from its checkpoint alone (the corpus it
was trained on need not be there), and the features it reads are decoded as the recipe decodes them, so
that predicting a test split gives the metric ``-m evaluate`` reports. Each task module names its
``Predictor``; the four utterance classifiers (KS, IC, SID, ER) share ``UtteranceClasses``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the task modules are read without torch (the command line's parsers)
    import torch
    from torch import nn

Prediction = dict[str, Any]  # {"label": ...} | {"text": ...} | {"segments": [...]}, plus "scores" if asked
Labels = list[str] | dict[str, list[str]]  # class names by output index; IC: each slot's values


class Predictor:
    """How one recipe's head is rebuilt and read. ``describe`` runs once at training time on the recipe's
    own head and returns what prediction needs besides tensors (label names, the dictionary); every
    checkpoint saves it as ``TaskInfo``. ``split`` cuts a recording into the pieces the recipe runs through
    the upstream as one batch (SD's chunks); then ``decode`` gives one prediction per recording."""

    per_recording = False  # decode() gets the pieces of one recording, not a batch of recordings

    def describe(self, head: nn.Module, config: dict[str, Any]) -> dict[str, Any]:
        return {}

    def effects(self) -> list[list[str]]:
        """Sox effects the recipe's reader applies after down-mixing and resampling (KS: -3 dB)."""
        return []

    def build(self, config: dict[str, Any], dim: int, rate: int, info: dict[str, Any], workdir: Path) -> nn.Module:
        """The recipe's head for features of ``dim`` channels at one frame per ``rate`` samples, untrained."""
        raise NotImplementedError

    def labels(self, info: dict[str, Any]) -> Labels | None:
        """The class names of a classification task by output index; None for ASR and SD."""
        return None

    def check(self, head: nn.Module, wave: torch.Tensor, name: str) -> None:
        """Raise ``BadAudioError`` naming ``name`` if the recipe cannot run ``wave`` (SD: too short)."""

    def split(self, head: nn.Module, wave: torch.Tensor) -> list[torch.Tensor]:
        return [wave]

    def decode(
        self, head: nn.Module, features: list[torch.Tensor], waves: list[torch.Tensor], info: dict[str, Any],
        scores: bool,
    ) -> list[Prediction]:  # fmt: skip
        raise NotImplementedError


def recipe_module(task: str, part: str = "expert") -> Any:
    """``s3prl.downstream.<task>.<part>``: the namespace in which the recipe resolves ``modelrc.select``."""
    return importlib.import_module(f"s3prl.downstream.{task}.{part}")


class UtteranceClasses(Predictor):
    """S3PRL's utterance-level recipes: ``projector`` then ``model`` (``modelrc.select``) over the padded
    features, one vector of logits per utterance; IC's holds one softmax per slot, side by side.
    ``names`` reads the class names off the recipe's trained head."""

    def __init__(
        self, task: str, names: Callable[[nn.Module], Labels], effects: Callable[[], list[list[str]]] | None = None
    ) -> None:
        self.task = task
        self._names = names
        self._effects = effects

    def describe(self, head: nn.Module, config: dict[str, Any]) -> dict[str, Any]:
        return {"labels": self._names(head)}

    def effects(self) -> list[list[str]]:
        return self._effects() if self._effects else []

    def labels(self, info: dict[str, Any]) -> Labels:
        return info["labels"]

    def _groups(self, info: dict[str, Any]) -> list[tuple[str | None, list[str]]]:
        labels = self.labels(info)
        return list(labels.items()) if isinstance(labels, dict) else [(None, labels)]

    def build(self, config: dict[str, Any], dim: int, rate: int, info: dict[str, Any], workdir: Path) -> nn.Module:
        import torch
        from torch import nn

        modelrc = config["downstream_expert"]["modelrc"]
        select = modelrc["select"]
        head = nn.Module()
        head.projector = nn.Linear(dim, modelrc["projector_dim"])
        outputs = sum(len(values) for _, values in self._groups(info))
        head.model = getattr(recipe_module(self.task), select)(
            input_dim=modelrc["projector_dim"], output_dim=outputs, **modelrc.get(select, {})
        )
        head.register_buffer("best_score", torch.zeros(1))  # the recipe's, so that its state loads strictly
        return head

    def decode(
        self, head: nn.Module, features: list[torch.Tensor], waves: list[torch.Tensor], info: dict[str, Any],
        scores: bool,
    ) -> list[Prediction]:  # fmt: skip
        import torch
        from torch.nn.utils.rnn import pad_sequence

        lengths = torch.IntTensor([len(feature) for feature in features]).to(features[0].device)
        logits, _ = head.model(head.projector(pad_sequence(features, batch_first=True)), lengths)
        chosen: list[list[str]] = [[] for _ in features]
        tables: list[dict[str, Any]] = [{} for _ in features]
        start = 0
        for slot, values in self._groups(info):
            part = logits[:, start : start + len(values)]
            start += len(values)
            for names, index in zip(chosen, part.max(dim=-1).indices.tolist()):  # the recipe's argmax
                names.append(values[index])
            for table, row in zip(tables, part.softmax(dim=-1).tolist()):
                probabilities = {value: round(p, 6) for value, p in zip(values, row)}
                table.update({slot: probabilities} if slot else probabilities)
        # IC's label is action,object,location, as the recipe writes its predictions
        predictions = [{"label": ",".join(names)} for names in chosen]
        if scores:
            for prediction, table in zip(predictions, tables):
                prediction["scores"] = table
        return predictions
