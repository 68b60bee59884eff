"""Masked prediction as in HuBERT, with S3PRL's own ``HubertModel``.

Loss, as fairseq's HuBERT criterion for Base computes it: cross-entropy of the masked frames' logits
against index 0 (``compute_nce`` puts the true cluster first) plus 10 x ``features_pen``; unmasked
frames weigh 0. Everything random comes from ``seed``: crops from a NumPy generator, masks from
NumPy's global RNG (S3PRL's ``compute_mask_indices`` draws there), dropout and init from torch's."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from effspeech.superb.trainer.rng import seed_everything
from effspeech.tools.pretrain.config import PretrainConfig
from effspeech.tools.pretrain.curve import save_curve
from effspeech.tools.pretrain.data import AudioPool, training_files
from effspeech.tools.pretrain.features import SAMPLE_RATE
from effspeech.tools.pretrain.model import build_model, save_checkpoint
from effspeech.tools.pretrain.targets import ClusterTargets

FEATURES_PEN_WEIGHT = 10.0
CLIP_NORM = 10.0


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


def masked_loss(
    model: torch.nn.Module, wavs: torch.Tensor, valid: torch.Tensor, targets: list[torch.Tensor], names: list[str]
) -> dict:
    """One forward pass: the loss (cross-entropies of all codebooks summed, as fairseq's criterion sums
    its target lists) and the numbers worth logging; ``ce`` and ``accuracy`` are those of the first
    codebook, the others get ``ce_<name>`` and ``accuracy_<name>``."""
    padding_mask = torch.arange(wavs.size(1), device=wavs.device)[None] >= valid[:, None]
    output = model(wavs, target_list=targets, padding_mask=padding_mask, mask=True)
    result = {"features_pen": output["features_pen"].detach()}
    total = FEATURES_PEN_WEIGHT * output["features_pen"]
    for index, (name, logits) in enumerate(zip(names, output["logit_m_list"], strict=True)):
        logits = logits.float()
        ce = F.cross_entropy(logits, logits.new_zeros(len(logits), dtype=torch.long))
        total = total + ce
        suffix = "" if index == 0 else f"_{name}"
        result[f"ce{suffix}"] = ce.detach()
        result[f"accuracy{suffix}"] = (logits.argmax(dim=1) == 0).float().mean()
    return {"loss": total, **result}


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
    codebooks = {"mfcc": config.clusters, "pitch": config.pitch_clusters, "voice": config.voice_clusters}
    targets = [ClusterTargets.fit(pool, name, size, config.seed) for name, size in codebooks.items() if size]
    sizes = ", ".join(f"{len(codebook.centroids)} {codebook.features}" for codebook in targets)
    log(f"k-means: {sizes} clusters in {time.perf_counter() - fitted:.0f} s")

    device = torch.device(config.device)
    model, header = build_model(
        config.arch,
        [len(codebook.centroids) for codebook in targets],
        config.seed,
        {"feature_grad_mult": config.feature_grad_mult},
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
        labels = [codebook.batch(wavs).to(device) for codebook in targets]
        result = masked_loss(model, wavs.to(device), valid.to(device), labels, [c.features for c in targets])
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
            scores = " ".join(f"{name} {value:.3f}" for name, value in record.items() if name.startswith(("ce", "acc")))
            log(
                f"step {step}/{config.steps} loss {record['loss']:.3f} {scores} "
                f"lr {record['lr']:.2e} {step / elapsed:.2f} steps/s"
            )

    extra = {
        "config": asdict(config),
        "hours": {source: round(part.hours, 3) for source, part in pools.items()},
        "seconds": round(time.perf_counter() - started, 1),
        "final_loss": records[-1]["loss"],
        "targets": [codebook.state() for codebook in targets],
    }
    out = save_checkpoint(model.eval(), header, Path(config.out), extra)
    json_path, png_path = save_curve(records, out)
    log(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB), {json_path.name}, {png_path.name}")
    return out
