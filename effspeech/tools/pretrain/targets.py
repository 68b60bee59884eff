"""HuBERT targets: k-means clusters of standardised frame features, one codebook per feature kind.

``mfcc`` is HuBERT's first iteration: a phone-like code that is meant to ignore the speaker. ``pitch``
(log F0 and voicing per frame) and ``voice`` (timbre and pitch statistics of each 2 s block) are extra
codebooks that depend on who speaks; predicting them for masked frames makes the model keep the
speaker, which MFCC clusters alone teach it to drop (docs/hubert_mini.md, "Why the first checkpoint fell short on SID").
Standardising each dimension keeps one (MFCC c0, loudness) from dominating the Euclidean distance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from effspeech.errors import ConfigError
from effspeech.tools.pretrain.data import AudioPool
from effspeech.tools.pretrain.features import mfcc_deltas, pitch, voice
from effspeech.tools.pretrain.kmeans import assign, fit_kmeans

FEATURES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"mfcc": mfcc_deltas, "pitch": pitch, "voice": voice}


@dataclass(frozen=True)
class ClusterTargets:
    features: str
    mean: torch.Tensor
    std: torch.Tensor
    centroids: torch.Tensor

    @classmethod
    def fit(
        cls,
        pool: AudioPool,
        features: str,
        clusters: int,
        seed: int,
        files: int = 1000,
        max_frames: int = 100_000,
    ) -> ClusterTargets:
        """k-means on the ``features`` frames of up to ``files`` random files, subsampled to ``max_frames``."""
        if features not in FEATURES:
            raise ConfigError(f"unknown target features {features!r}; valid: {', '.join(FEATURES)}")
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.choice(len(pool.paths), size=min(files, len(pool.paths)), replace=False))
        frames = torch.cat([FEATURES[features](pool.read(int(index))) for index in picked])
        if len(frames) > max_frames:
            frames = frames[torch.from_numpy(np.sort(rng.choice(len(frames), size=max_frames, replace=False)))]
        mean, std = frames.mean(dim=0), frames.std(dim=0).clamp(min=1e-5)
        return cls(features, mean, std, fit_kmeans((frames - mean) / std, clusters, seed))

    def __call__(self, wav: torch.Tensor) -> torch.Tensor:
        """The cluster index of every 50 Hz frame of ``wav``."""
        return assign((FEATURES[self.features](wav) - self.mean) / self.std, self.centroids)

    def batch(self, wavs: torch.Tensor) -> torch.Tensor:
        """``(batch, frames)`` targets of equal-length waves."""
        return torch.stack([self(wav) for wav in wavs])

    def state(self) -> dict:
        """What the checkpoint records to relabel audio exactly as in training."""
        return {"features": self.features, "mean": self.mean, "std": self.std, "centroids": self.centroids}
