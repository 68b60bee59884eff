"""Masked prediction as in HuBERT, with S3PRL's own ``HubertModel``.

Loss, as fairseq's HuBERT criterion for Base computes it: cross-entropy of the masked frames' logits
against index 0 (``compute_nce`` puts the true cluster first) plus 10 x ``features_pen``; unmasked
frames weigh 0. Everything random comes from ``seed``: crops from a NumPy generator, masks from
NumPy's global RNG (S3PRL's ``compute_mask_indices`` draws there), dropout and init from torch's."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from effspeech.pretrain.curve import save_curve
from effspeech.pretrain.data import AudioPool, training_files
from effspeech.pretrain.features import SAMPLE_RATE
from effspeech.pretrain.model import build_model, save_checkpoint
from effspeech.pretrain.targets import ClusterTargets

FEATURES_PEN_WEIGHT = 10.0
CLIP_NORM = 10.0


@dataclass
class PretrainConfig:
    data: str
    out: str
    arch: str = "hubert_small"
    steps: int = 2000
    batch_size: int = 8
    crop_seconds: float = 2.0
    lr: float = 5e-4
    warmup: float = 0.08  # fraction of steps with a linear ramp up to lr; then linear decay to 0
    clusters: int = 100
    seed: int = 0
    device: str = "cpu"
    log_every: int = 10
    threads: int = 0  # torch CPU threads; 0 keeps torch's default (one per core)
    feature_grad_mult: float = 0.1  # 0 freezes the conv extractor at its random init
    unlabeled: list[str] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def cpu_threads(count: int) -> Iterator[None]:
    """Use ``count`` torch threads inside the block (0: leave as is). On a machine shared with other
    jobs one thread is often faster than two: OpenMP threads wait on each other when descheduled."""
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def warmup_then_linear(steps: int, warmup: float) -> Callable[[int], float]:
    """The LR factor after ``step`` optimizer steps: up to 1 over the warmup, then down to 0 at ``steps``."""
    ramp = max(1, round(warmup * steps))
    return lambda step: (step + 1) / ramp if step < ramp else max(0.0, (steps - step) / max(1, steps - ramp))


def masked_loss(model: torch.nn.Module, wavs: torch.Tensor, valid: torch.Tensor, targets: torch.Tensor) -> dict:
    """One forward pass: the loss and the numbers worth logging."""
    padding_mask = torch.arange(wavs.size(1), device=wavs.device)[None] >= valid[:, None]
    output = model(wavs, target_list=[targets], padding_mask=padding_mask, mask=True)
    logits = output["logit_m_list"][0].float()
    truth = logits.new_zeros(len(logits), dtype=torch.long)
    ce = F.cross_entropy(logits, truth)
    return {
        "loss": ce + FEATURES_PEN_WEIGHT * output["features_pen"],
        "ce": ce.detach(),
        "features_pen": output["features_pen"].detach(),
        "accuracy": (logits.argmax(dim=1) == 0).float().mean(),
    }


def pretrain(config: PretrainConfig, log: Callable[[str], None] = print) -> Path:
    """Pretrain, write the checkpoint (fp16 weights) and its loss curve; return the checkpoint path."""
    with cpu_threads(config.threads):
        return _pretrain(config, log)


def _pretrain(config: PretrainConfig, log: Callable[[str], None]) -> Path:
    started = time.perf_counter()
    files = training_files(config.data, config.unlabeled)
    pools = {source: AudioPool.scan(paths) for source, paths in files.items()}
    for source, part in pools.items():
        log(f"data {source}: {len(part.paths)} files, {part.hours:.2f} h")
    pool = AudioPool.join(pools.values())
    log(f"data total: {len(pool.paths)} files, {pool.hours:.2f} h ({time.perf_counter() - started:.0f} s to scan)")

    fitted = time.perf_counter()
    targets = ClusterTargets.fit(pool, config.clusters, config.seed)
    log(f"k-means: {config.clusters} clusters of MFCC frames in {time.perf_counter() - fitted:.0f} s")

    device = torch.device(config.device)
    model, header = build_model(
        config.arch, config.clusters, config.seed, {"feature_grad_mult": config.feature_grad_mult}
    )
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_then_linear(config.steps, config.warmup))
    seed_everything(config.seed)
    crops = np.random.default_rng(config.seed)
    samples = round(config.crop_seconds * SAMPLE_RATE)

    records, window, trained = [], [], time.perf_counter()
    for step in range(1, config.steps + 1):
        wavs, valid = pool.crops(crops, config.batch_size, samples)
        labels = targets.batch(wavs)
        result = masked_loss(model, wavs.to(device), valid.to(device), labels.to(device))
        optimizer.zero_grad(set_to_none=True)
        result["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        optimizer.step()
        schedule.step()
        window.append({name: float(value.detach()) for name, value in result.items()})
        if step % config.log_every == 0 or step == config.steps:
            elapsed = time.perf_counter() - trained
            record = {name: float(np.mean([w[name] for w in window])) for name in window[0]}
            record.update(step=step, lr=schedule.get_last_lr()[0], seconds=round(elapsed, 1))
            records.append(record)
            window = []
            log(
                f"step {step}/{config.steps} loss {record['loss']:.3f} ce {record['ce']:.3f} "
                f"acc {record['accuracy']:.3f} lr {record['lr']:.2e} {step / elapsed:.2f} steps/s"
            )

    extra = {
        "config": asdict(config),
        "hours": {source: round(part.hours, 3) for source, part in pools.items()},
        "seconds": round(time.perf_counter() - started, 1),
        "final_loss": records[-1]["loss"],
        "targets": {"mean": targets.mean, "std": targets.std, "centroids": targets.centroids},
    }
    out = save_checkpoint(model.eval(), header, Path(config.out), extra)
    json_path, png_path = save_curve(records, out)
    log(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB), {json_path.name}, {png_path.name}")
    return out
