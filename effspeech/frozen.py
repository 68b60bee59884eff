"""Which part of an upstream no trainable tensor, hook or method reaches: the part whose output can be
computed once per input and reused (``effspeech.superb.frozen_cache``). Two cuts exist:

- ``hidden_states``: nothing in the upstream trains (the weighted-sum baseline): every hidden state the
  featurizer reads is frozen.
- ``extractor``: the methods act on the transformer only: the CNN waveform extractor's output is frozen.

A method that touches the extractor (``cnn``, ``bitfit`` with ``extractor: true``) or sets a flag on the
network, and a fine-tuned upstream (``-f``), leave nothing to cache. Cuts inside the transformer (the input
of the lowest adapted layer) are not offered: S3PRL's experts collect the hidden states with hooks on the
layers themselves, so the layers below such a cut would still have to run (docs/tasks.md)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from effspeech.anatomy import find_anatomy
from effspeech.engine import adapters_of
from effspeech.errors import UnsupportedModelError

CUTS = ("hidden_states", "extractor")


@dataclass(frozen=True)
class Cut:
    point: str | None  # one of CUTS, or None: nothing below which the upstream is frozen
    reason: str  # why this cut and not a deeper one, for the log and results.json


def frozen_cut(upstream: nn.Module) -> Cut:
    """The deepest cut of ``upstream`` (an S3PRL expert or a network, with or without adapters attached)
    below which nothing trains: no parameter with ``requires_grad``, no hook, no parametrization, no flag."""
    try:
        anatomy = find_anatomy(upstream)
    except UnsupportedModelError:  # another upstream: only "nothing trains" can be known about it
        anatomy = None
    adapters = adapters_of(upstream) if anatomy is not None else None
    trained = [p for p in upstream.parameters() if p.requires_grad]
    if adapters is None or not adapters.active:
        if trained:
            return Cut(None, "the upstream's own tensors train (-f): nothing is frozen")
        return Cut("hidden_states", "nothing in the upstream trains: every hidden state is frozen")
    theirs = {id(p) for p in adapters.parameters()}
    if any(id(p) not in theirs for p in trained):
        return Cut(None, "the upstream's own tensors train besides the adapters' (-f): nothing is frozen")
    extractor = anatomy.network.feature_extractor
    inside = {id(part) for part in (*extractor.modules(), *extractor.parameters(), anatomy.network)}
    touching = [name for name in adapters.active if any(id(t) in inside for t in adapters.touched(name))]
    if touching:
        return Cut(None, f"{_they(touching)} on the CNN extractor: nothing below the methods is frozen")
    return Cut("extractor", f"{_they(adapters.active)} above the CNN extractor only")


def _they(methods: list[str]) -> str:
    return f"{', '.join(methods)} {'acts' if len(methods) == 1 else 'act'}"
