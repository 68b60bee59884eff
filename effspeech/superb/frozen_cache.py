"""Run an upstream with its frozen part (``effspeech.frozen``) computed once per clip and read back after.

What is cached is defined per clip: the frozen part's output for the clip alone, in a batch of one,
unpadded. In a batch, a clip's values depend on its batch-mates: through padding (HuBERT Base's and
wav2vec 2.0 Base's extractors normalise over time, padding included), and, by about 1e-6, through the
kernels a CPU picks for the batch's shape even when all clips have one length. ``--frozen-eval``
computes the frozen part in this per-clip way without a cache, and in eval mode (no dropout), as a
cached run does: cached and uncached ``--frozen-eval`` runs are equal bit for bit
(tests/test_frozen_cache.py), and differ from S3PRL's batched computation by that much.

- cut ``extractor``: the CNN extractor's ``forward`` is replaced, for the duration of one upstream call
  and on that module instance only, by a lookup; everything above it (and every hook) runs as usual.
- cut ``hidden_states``: the upstream is not called at all when every clip of the batch is cached; the
  features the featurizer selects (``-s``) come back padded with zeros, which its trimming to each
  clip's length removes."""

from __future__ import annotations

import contextlib
import random
import time
from argparse import Namespace
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

import effspeech
from effspeech.anatomy import find_anatomy
from effspeech.frozen import Cut, frozen_cut
from effspeech.superb.frozen_store import FrozenStore, default_root, input_key, parse_size
from effspeech.superb.upstream import checkpoint_identity, pad_short_waves


class FrozenPart:
    """``upstream(wavs)`` with the part below ``cut`` computed per clip, and stored in ``store`` if given."""

    def __init__(self, upstream: nn.Module, cut: Cut, store: FrozenStore | None, selection: str, cnn: bool) -> None:
        if cut.point is None:
            raise ValueError(f"no frozen part to compute per clip: {cut.reason}")
        self.upstream, self.cut, self.store, self.selection, self.cnn = upstream, cut, store, selection, cnn
        self.extractor = find_anatomy(upstream).network.feature_extractor if cut.point == "extractor" else None
        self.compute_seconds = 0.0  # spent computing the frozen part of clips not in the store
        self.computed = 0

    def eval_below_cut(self) -> None:
        """Frozen modules below the cut run in eval mode (no dropout), cached or not."""
        (self.extractor or self.upstream).eval()

    def __call__(self, wavs: list[torch.Tensor]) -> Any:
        inputs = pad_short_waves(wavs) if self.cnn else list(wavs)
        if self.cut.point == "hidden_states":
            states = self._per_clip(inputs, self._hidden_states)
            count = states[0].size(0)
            stacked = _pad_stack(states, time_dim=1)  # (batch, layers, time, dim)
            layers = [stacked[:, i] for i in range(count)]
            return {self.selection: layers if count > 1 else layers[0]}  # S3PRL's featurizer unwraps a 1-list
        lengths = [len(wav) for wav in inputs]
        real = self.extractor.forward

        def cached_forward(source: torch.Tensor) -> torch.Tensor:
            rows = [source[i, :length] for i, length in enumerate(lengths)]
            return _pad_stack(self._per_clip(rows, real), time_dim=-1)

        self.extractor.forward = cached_forward  # this call only: the instance attribute goes again below
        try:
            return self.upstream(inputs)
        finally:
            del self.extractor.forward

    def _hidden_states(self, batch: torch.Tensor) -> torch.Tensor:
        """(1, layers, time, dim): what the featurizer selects, for a batch of one clip."""
        selected = self.upstream(list(batch))[self.selection]
        selected = list(selected.values()) if isinstance(selected, dict) else selected
        return torch.stack(list(selected), dim=1) if isinstance(selected, list | tuple) else selected[:, None]

    def _per_clip(self, clips: list[torch.Tensor], compute: Callable[[torch.Tensor], torch.Tensor]) -> list[Any]:
        """Each clip's frozen output: read from the store, or computed for the clip alone."""
        keys = [input_key(clip.detach().cpu().numpy()) for clip in clips] if self.store is not None else None
        out: list[torch.Tensor | None] = [None] * len(clips)
        if keys is not None:
            for i, key in enumerate(keys):
                entry = self.store.get(key)
                if entry is not None:
                    out[i] = torch.tensor(entry, dtype=torch.float32, device=clips[i].device)
        started = time.perf_counter()
        with torch.no_grad(), _random_state_kept():
            for i in [i for i, value in enumerate(out) if value is None]:
                value = compute(clips[i][None])[0]
                if keys is not None:
                    self.store.put(keys[i], value.cpu().numpy())
                    if self.store.dtype != "fp32":  # used as it will be read back
                        value = value.to(torch.float16).to(torch.float32)
                out[i] = value
                self.computed += 1
        self.compute_seconds += time.perf_counter() - started
        return out

    def summary(self) -> dict[str, Any]:
        """For results.json: the cut, why, and what the store saved."""
        record: dict[str, Any] = {"cut": self.cut.point, "reason": self.cut.reason, "computed": self.computed}
        record["compute_s"] = round(self.compute_seconds, 3)
        if self.store is not None:
            record.update(self.store.summary())
            per_clip = self.compute_seconds / self.computed if self.computed else 0.0
            record["saved_s_estimate"] = round(self.store.stats.hits * per_clip, 3)
        return record


@contextlib.contextmanager
def _random_state_kept() -> Iterator[None]:
    """Computing the frozen part draws no random numbers (fairseq's encoder draws one per call for layerdrop,
    even in eval mode): how many clips were read back must not change what the data pipeline draws next."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        yield
    random.setstate(python_state)
    np.random.set_state(numpy_state)


def _pad_stack(values: list[torch.Tensor], time_dim: int) -> torch.Tensor:
    """Stack per-clip tensors, zero-padding the time axis to the longest."""
    longest = max(value.size(time_dim) for value in values)
    padded = []
    for value in values:
        missing = longest - value.size(time_dim)
        if missing:
            dims = value.dim()
            axis = time_dim % dims
            pad = [0, 0] * (dims - 1 - axis) + [0, missing]
            value = nn.functional.pad(value, pad)
        padded.append(value)
    return torch.stack(padded)


def build_frozen_part(args: Namespace, upstream: nn.Module, cnn: bool) -> FrozenPart | None:
    """The trainer's frozen part: None unless the run computes it per clip (``--frozen-eval``, which
    ``--cache-frozen`` implies for a new run; a checkpoint keeps what it was trained with) and the upstream
    has one (``cnn``, ``bitfit`` on the extractor and ``-f`` have none). Stored when ``--cache-frozen``."""
    cache, per_clip = getattr(args, "cache_frozen", None), getattr(args, "frozen_eval", False)
    if not per_clip:
        return None
    cut = frozen_cut(upstream)
    if cut.point is None:
        return None
    store = None
    if cache:
        namespace = {
            "upstream": checkpoint_identity(vars(args), full=True),
            "cut": cut.point,
            "selection": args.upstream_feature_selection if cut.point == "hidden_states" else None,
            "device": torch.device(args.device).type,
            "effspeech": effspeech.__version__,
        }
        root = default_root() if cache == "default" else cache
        store = FrozenStore(root, namespace, args.cache_dtype, parse_size(args.cache_size))
    return FrozenPart(upstream, cut, store, args.upstream_feature_selection, cnn)
