"""One method measured in its own process (``python -m effspeech.tools.bench.worker JOB.json``), so that its
peak memory is its own: train steps paired with frozen forwards F, checkpoint size, and for attached
adapters their inference overhead against the plain upstream (merged too, for LoRA and cnn) and whether their update
reaches the output."""

from __future__ import annotations

import io
import json
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from effspeech.count import count_parameters
from effspeech.frozen import frozen_cut
from effspeech.superb.frozen_cache import FrozenPart
from effspeech.superb.frozen_store import FrozenStore
from effspeech.superb.trainer.precision import compile_upstream
from effspeech.superb.upstream import load_upstream
from effspeech.tools.bench.job import Job
from effspeech.tools.bench.measure import PeakMemory, lifetime_peak_rss, median, time_call
from effspeech.tools.bench.setups import BASELINES, Setup, prepare

CLASSES = 32  # frame classes of the linear head
LEARNING_RATE = 1e-4
PROBE_SCALE = 0.1  # noise added to every trainable tensor to see whether the update reaches the output
SAMPLE_RATE = 16000


class WeightedSumHead(nn.Module):
    """S3PRL's Featurizer (softmax-weighted sum of every hidden state) followed by a linear frame classifier."""

    def __init__(self, layers: int, dim: int, classes: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(layers))
        self.linear = nn.Linear(dim, classes)

    def forward(self, hidden_states: list[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack(hidden_states)
        weights = F.softmax(self.weights, dim=-1).to(stacked.dtype)
        return self.linear((weights.view(-1, 1, 1, 1) * stacked).sum(0))


def load_plain(upstream: str, ckpt: str, device: torch.device) -> nn.Module:
    """The entry's expert without adapters (for S3PRL's, what ``s3prl.hub.<family>_local(ckpt=...)`` builds)."""
    return load_upstream(upstream, ckpt)[0].to(device)


def run(job: Job) -> dict:
    device = torch.device(job.device)
    if job.threads:
        torch.set_num_threads(job.threads)
    torch.manual_seed(job.seed)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=job.dtype == "bf16")
    expert = load_plain(job.upstream, job.ckpt, device).eval()
    wavs = [torch.randn(int(job.seconds * SAMPLE_RATE), device=device) * 0.1 for _ in range(job.batch)]

    def frozen_forward(model: nn.Module) -> list[torch.Tensor]:
        with torch.no_grad(), autocast:
            return model(wavs)["hidden_states"]

    hidden = frozen_forward(expert)
    load_peak = lifetime_peak_rss() if device.type == "cpu" else None

    setup = prepare(expert, job.method)
    states = frozen_forward(expert)  # what the head reads, which a method may change (elp's L-adapters)
    head = WeightedSumHead(len(states), states[0].size(-1), CLASSES).to(device)
    labels = torch.randint(CLASSES, states[0].shape[:2], device=device)
    optimizer = torch.optim.AdamW([*setup.trainable, *head.parameters()], lr=LEARNING_RATE)
    if job.compile:  # as the trainer's --compile: the transformer encoder in place, the extractor eager
        compile_upstream(expert, logging.getLogger(__name__))
    model = uncached = expert
    expert.train(setup.upstream_grad)
    cut = frozen_cut(expert)
    scratch = tempfile.TemporaryDirectory(prefix="effspeech-bench-cache-") if job.cache else None
    if scratch is not None and cut.point is not None:  # warm: every clip's frozen part is in the store first
        frozen = FrozenPart(model, cut, FrozenStore(scratch.name, {"bench": job.ckpt}), "hidden_states", cnn=True)
        frozen(wavs)
        frozen.eval_below_cut()
        model = frozen

    def train_step(upstream: Callable = model) -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.set_grad_enabled(setup.upstream_grad), autocast:
            states = upstream(wavs)["hidden_states"]
        with autocast:
            logits = head(states)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten())
        loss.backward()
        optimizer.step()

    # Peak memory first, alone: AdamW allocates its state in step 1, so step 2 is a steady training step.
    peak = PeakMemory(device)
    peak.reset()
    first_step = time_call(train_step, device)  # with --compile: compilation happens here
    train_step()
    peak_bytes = peak.read()
    # Then times: each step paired with a frozen no-grad forward F of a plain copy, so a ratio step/F
    # is taken within seconds and survives the load of a shared machine drifting between runs.
    reference = load_plain(job.upstream, job.ckpt, device).eval()
    forward_times, step_times = _alternate(lambda: frozen_forward(reference), train_step, device, job.warmup, job.steps)
    result = {
        "method": job.method,
        "compiled": job.compile,
        "cached": job.cache,
        "cut": cut.point if job.cache else None,
        "trainable_params": count_parameters(setup.trainable),
        "trainable_with_grad": count_parameters(p for p in setup.trainable if p.grad is not None),
        "head_params": count_parameters(head),
        "step_times": step_times,
        "forward_times": forward_times,
        "step_s": median(step_times),
        "forward_s": median(forward_times),
        "step_over_forward": [step / forward for step, forward in zip(step_times, forward_times)],
        "first_step_s": first_step,
        "peak_mem_bytes": peak_bytes,
        "peak_mem_resettable": peak.resettable,
        "load_peak_rss_bytes": load_peak,
        "ckpt_bytes": _checkpoint_bytes(setup, head),
        "frames": hidden[0].size(1),
        "threads": torch.get_num_threads(),
    }
    if model is not uncached:  # the cached step against the same method's uncached one, paired in this process
        uncached_times, cached_times = _alternate(lambda: train_step(uncached), train_step, device, 0, job.steps)
        result["cached_over_uncached"] = median([c / u for c, u in zip(cached_times, uncached_times)])
    if scratch is not None:
        scratch.cleanup()
    if job.method not in BASELINES and not job.cache:
        result.update(_inference_checks(job, expert, reference, setup, frozen_forward, device))
    return result


def _alternate(
    first: Callable[[], object], second: Callable[[], object], device: torch.device, warmup: int, reps: int
) -> tuple[list[float], list[float]]:
    """Times of ``first`` and ``second`` run in alternating pairs (order swapped each pair), warm-up pairs dropped."""
    times: tuple[list[float], list[float]] = ([], [])
    for index in range(warmup + reps):
        order = (0, 1) if index % 2 == 0 else (1, 0)
        for which in order:
            elapsed = time_call((first, second)[which], device)
            if index >= warmup:
                times[which].append(elapsed)
    return times


def _checkpoint_bytes(setup: Setup, head: WeightedSumHead) -> int:
    """The size of what training saves per task: the upstream's trained part, the layer weights, the head."""
    buffer = io.BytesIO()
    state = {
        "Upstream": setup.state(),
        "Featurizer": {"weights": head.weights.detach()},
        "Downstream": head.linear.state_dict(),
    }
    torch.save(state, buffer)
    return buffer.getbuffer().nbytes


def _inference_checks(
    job: Job, expert: nn.Module, reference: nn.Module, setup: Setup, frozen_forward, device: torch.device
) -> dict:
    """Against the plain copy: forward overhead of the attached adapters (median of paired ratios), the same
    with mergeable methods merged, and how far the output moves when every trainable tensor is perturbed
    (zero-initialised ones included, e.g. LoRA's B): zero means the method's update never reaches the output."""
    expert.eval()

    def overhead() -> float:
        plain, adapted = _alternate(
            lambda: frozen_forward(reference), lambda: frozen_forward(expert), device, job.warmup, job.infer_reps
        )
        return median([a / p for a, p in zip(adapted, plain)]) - 1.0

    checks = {"infer_overhead": overhead()}
    if setup.adapters is not None and any(hasattr(m, "merge") for m in setup.adapters.methods.values()):
        setup.adapters.merge()
        checks["merged_overhead"] = overhead()
        setup.adapters.unmerge()
    before = frozen_forward(expert)[-1].float()
    with torch.no_grad():
        for parameter in setup.trainable:
            parameter.add_(torch.randn_like(parameter) * PROBE_SCALE)
    checks["output_delta"] = float((frozen_forward(expert)[-1].float() - before).abs().max())
    return checks


def main(argv: list[str] | None = None) -> int:
    job = Job.read(Path((argv or sys.argv[1:])[0]))
    result = run(job)
    Path(job.out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
