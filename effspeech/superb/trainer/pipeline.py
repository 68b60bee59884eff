"""Build upstream (+ adapters), S3PRL's Featurizer and the task's DownstreamExpert, and run them as one
module so a single DistributedDataParallel wrapper covers every trainable tensor."""

from __future__ import annotations

import importlib
from argparse import Namespace
from typing import Any

import torch
from s3prl.upstream.interfaces import Featurizer
from torch import nn

from effspeech.anatomy import find_anatomy
from effspeech.count import count_parameters
from effspeech.engine import AdapterSet
from effspeech.errors import ConfigError, UnsupportedModelError
from effspeech.spec import Spec
from effspeech.superb.frozen_cache import FrozenPart, build_frozen_part
from effspeech.superb.records import TrainingState
from effspeech.superb.upstream import load_upstream, pad_short_waves


def build_upstream(args: Namespace, spec: Spec) -> tuple[nn.Module, AdapterSet | None]:
    """The upstream expert with ``spec`` attached. Without adapters it is frozen (weighted-sum baseline);
    with -f every upstream tensor trains except a CNN extractor that gets no gradient anyway."""
    expert, adapters = load_upstream(
        args.upstream,
        args.upstream_ckpt,
        spec or None,
        refresh=args.upstream_refresh,
        model_config=args.upstream_model_config,
    )
    if args.upstream_trainable:
        expert.requires_grad_(True)
        _freeze_gradless_extractor(expert)
    elif adapters is None:
        expert.requires_grad_(False)
    return expert.to(args.device), adapters


def _freeze_gradless_extractor(expert: nn.Module) -> None:
    """S3PRL's HuBERT/wav2vec2/WavLM experts set ``feature_grad_mult=0``, which runs the CNN extractor under
    no_grad, so -f never trains it; mark it frozen so it stays out of the optimizer, counts and checkpoints.
    A transformers expert clears its extractor's ``_requires_grad`` to the same end. (The cnn adapter turns
    both on, and then -f trains the extractor too.)"""
    try:
        network = find_anatomy(expert).network
    except UnsupportedModelError:  # not a wav2vec2-style upstream: nothing to say about its extractor
        return
    extractor = network.feature_extractor
    if getattr(network, "feature_grad_mult", 1.0) == 0.0 or getattr(extractor, "_requires_grad", True) is False:
        extractor.requires_grad_(False)


def has_cnn_extractor(upstream: nn.Module) -> bool:
    """HuBERT, wav2vec 2.0 and WavLM: a CNN that needs 400 samples for its first frame."""
    try:
        find_anatomy(upstream)
    except UnsupportedModelError:
        return False
    return True


def build_featurizer(args: Namespace, upstream: nn.Module) -> Featurizer:
    return Featurizer(
        upstream=upstream,
        feature_selection=args.upstream_feature_selection,
        layer_selection=args.upstream_layer_selection,
        upstream_device=args.device,
        normalize=args.upstream_feature_normalize,
    ).to(args.device)


def build_downstream(args: Namespace, config: dict[str, Any], featurizer: Featurizer) -> nn.Module:
    """The recipe's own ``DownstreamExpert``, given what S3PRL's runner gives it (config wins on name clashes)."""
    expert = importlib.import_module(f"s3prl.downstream.{args.downstream}.expert")
    return expert.DownstreamExpert(
        upstream_dim=featurizer.output_dim,
        upstream_rate=featurizer.downsample_rate,
        **{**vars(args), **config},
    ).to(args.device)


def upstream_states(upstream: nn.Module, wavs: list[torch.Tensor], cnn: bool) -> Any:
    """The upstream's output for a batch; ``cnn``: waves shorter than one CNN frame are padded to one."""
    return upstream(pad_short_waves(wavs) if cnn else wavs)


def load_trained(state: TrainingState, upstream: nn.Module, adapters: AdapterSet | None) -> None:
    """Put a checkpoint's trained upstream tensors in place: under -f the upstream's own (adapters
    included), else the adapters'. A checkpoint with adapters for an upstream built without is refused."""
    if state.upstream is not None:
        missing, unexpected = upstream.load_state_dict(state.upstream, strict=False)
        trained = {name for name, p in upstream.named_parameters() if p.requires_grad}
        missing = sorted(trained & set(missing))
        if unexpected or missing:
            raise ConfigError(f"upstream state does not fit: unexpected {unexpected}, missing {missing}")
    elif adapters is not None:
        adapters.load_state_dict(state.adapter_state)
    elif state.adapter_state:  # -i with --adapter none: never drop trained adapters silently
        raise ConfigError(f"checkpoint holds adapters {sorted(state.adapter_spec)}; this run has none")


class Pipeline(nn.Module):
    """upstream -> featurizer -> (specaug) -> downstream loss. The upstream runs under ``no_grad`` when none
    of its tensors train, so a frozen upstream keeps no activations; with adapters autograd only keeps what
    the adapter gradients need."""

    def __init__(
        self,
        upstream: nn.Module,
        featurizer: Featurizer,
        downstream: nn.Module,
        specaug: nn.Module | None,
        frozen: FrozenPart | None = None,
    ):
        super().__init__()
        self.upstream = upstream
        self.featurizer = featurizer
        self.downstream = downstream
        self.specaug = specaug
        self.frozen = frozen  # --cache-frozen/--frozen-eval: the part below the methods, per clip
        self.upstream_trains = any(p.requires_grad for p in upstream.parameters())
        self.has_cnn_extractor = has_cnn_extractor(upstream)

    def forward(self, split: str, wavs: list[torch.Tensor], *others: Any, records: dict, **kwargs: Any) -> Any:
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.upstream_trains):
            if self.frozen is not None:
                features = self.frozen(wavs)
            else:
                features = upstream_states(self.upstream, wavs, self.has_cnn_extractor)
        features = self.featurizer(wavs, features)  # the lengths S3PRL's featurizer trims to: the real ones
        if self.specaug is not None and self.training:
            features, _ = self.specaug(features)
        return self.downstream(split, features, *others, records=records, **kwargs)

    def set_train(self) -> None:
        """Train mode, except a frozen upstream, which S3PRL keeps in eval mode (no dropout)."""
        self.train()
        if not self.upstream_trains:
            self.upstream.eval()
        if self.frozen is not None:
            self.frozen.eval_below_cut()


def build_pipeline(args: Namespace, config: dict[str, Any], spec: Spec) -> tuple[Pipeline, AdapterSet | None]:
    upstream, adapters = build_upstream(args, spec)
    featurizer = build_featurizer(args, upstream)
    downstream = build_downstream(args, config, featurizer)
    specaug = None
    if config.get("specaug"):
        from s3prl.downstream.specaug import SpecAug

        specaug = SpecAug(**config["specaug"]).to(args.device)
    frozen = build_frozen_part(args, upstream, has_cnn_extractor(upstream))
    return Pipeline(upstream, featurizer, downstream, specaug, frozen), adapters


def param_groups(
    pipeline: Pipeline, adapters: AdapterSet | None, base_lr: float, rates: dict[str, float], finetune_lr: float | None
) -> list[dict[str, Any]]:
    """Optimizer groups: head + featurizer at ``base_lr``; each adapter method at its own rate; the rest of a
    fine-tuned upstream at ``finetune_lr``. Frozen tensors are in no group."""
    groups = [{"name": "head", "params": [p for p in pipeline.featurizer.parameters() if p.requires_grad]}]
    groups[0]["params"] += [p for p in pipeline.downstream.parameters() if p.requires_grad]
    seen = {id(p) for p in groups[0]["params"]}
    by_method: dict[str, list[nn.Parameter]] = {}
    for key, parameter in adapters.named_parameters() if adapters else ():
        by_method.setdefault(key.split(".", 1)[0], []).append(parameter)
    for method, parameters in by_method.items():
        groups.append({"name": method, "params": parameters, "lr": rates.get(method, base_lr)})
        seen.update(id(p) for p in parameters)
    rest = [p for p in pipeline.upstream.parameters() if p.requires_grad and id(p) not in seen]
    if rest:
        groups.append({"name": "finetune", "params": rest, "lr": finetune_lr or base_lr})
    for group in groups:
        group.setdefault("lr", base_lr)
    return [group for group in groups if group["params"]]


def count_trainable(pipeline: Pipeline) -> dict[str, int]:
    """Trainable tensor sizes by part, for results.json."""
    counts = {
        part: count_parameters(getattr(pipeline, part), trainable_only=True)
        for part in ("upstream", "featurizer", "downstream")
    }
    counts["total"] = sum(counts.values())
    return counts
