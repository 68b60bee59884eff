"""Resumable training order. A recipe's DataLoader draws its order from the global RNG, so a resumed run
could not replay it. Here each epoch's order is drawn from a generator seeded by (seed, epoch) - the same
on every DDP rank - and a resumed run skips the batches it already trained on without loading them."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler


class FixedOrder(Sampler[int]):
    """Yield a precomputed list of dataset indices."""

    def __init__(self, indices: list[int]) -> None:
        self.indices = indices

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def epoch_loader(loader: DataLoader, seed: int, epoch: int, skip_batches: int = 0) -> DataLoader:
    """``loader`` with its epoch-``epoch`` order fixed by ``seed`` and its first ``skip_batches`` dropped."""
    if loader.batch_size is None:
        raise ValueError("resumable order needs a DataLoader built with batch_size (no custom batch_sampler)")
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed * 100_003 + epoch)
        indices = [int(i) for i in loader.sampler]
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)  # worker seeds, not the global RNG
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=FixedOrder(indices[skip_batches * loader.batch_size :]),
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        generator=generator,
    )
