"""First-iteration HuBERT targets: k-means clusters of standardised MFCC frames.

Standardising each of the 39 dimensions keeps c0 (loudness) from dominating the Euclidean distance,
so clusters follow spectral shape rather than level."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from effspeech.pretrain.data import AudioPool
from effspeech.pretrain.features import mfcc_deltas
from effspeech.pretrain.kmeans import assign, fit_kmeans


@dataclass(frozen=True)
class ClusterTargets:
    mean: torch.Tensor
    std: torch.Tensor
    centroids: torch.Tensor

    @classmethod
    def fit(
        cls, pool: AudioPool, clusters: int, seed: int, files: int = 1000, max_frames: int = 100_000
    ) -> ClusterTargets:
        """k-means on the frames of up to ``files`` random files, subsampled to ``max_frames``."""
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.choice(len(pool.paths), size=min(files, len(pool.paths)), replace=False))
        frames = torch.cat([mfcc_deltas(pool.read(int(index))) for index in picked])
        if len(frames) > max_frames:
            frames = frames[torch.from_numpy(np.sort(rng.choice(len(frames), size=max_frames, replace=False)))]
        mean, std = frames.mean(dim=0), frames.std(dim=0).clamp(min=1e-5)
        return cls(mean, std, fit_kmeans((frames - mean) / std, clusters, seed))

    def __call__(self, wav: torch.Tensor) -> torch.Tensor:
        """The cluster index of every 50 Hz frame of ``wav``."""
        return assign((mfcc_deltas(wav) - self.mean) / self.std, self.centroids)

    def batch(self, wavs: torch.Tensor) -> torch.Tensor:
        """``(batch, frames)`` targets of equal-length waves."""
        return torch.stack([self(wav) for wav in wavs])
