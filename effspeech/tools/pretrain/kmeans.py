"""A small deterministic k-means: k-means++ seeding, then Lloyd iterations, all in torch.

Enough for the first HuBERT iteration (about 100 clusters on about 1e5 frames); deterministic for a
seed because every random choice comes from one seeded ``torch.Generator``."""

from __future__ import annotations

import torch


def assign(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """The index of the nearest centroid of every row of ``points``.

    ``|c|^2 - 2 x.c`` ranks centroids as the full distance does, in one matrix product."""
    return (centroids.pow(2).sum(dim=1) - 2 * points @ centroids.T).argmin(dim=1)


def kmeans_pp(points: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each next centre drawn with probability proportional to squared distance."""
    chosen = [int(torch.randint(len(points), (1,), generator=generator))]
    nearest = (points - points[chosen[0]]).pow(2).sum(dim=1)
    for _ in range(1, k):
        chosen.append(int(torch.multinomial(nearest, 1, generator=generator)))
        nearest = torch.minimum(nearest, (points - points[chosen[-1]]).pow(2).sum(dim=1))
    return points[chosen]


def fit_kmeans(points: torch.Tensor, k: int, seed: int, iterations: int = 50) -> torch.Tensor:
    """``(k, dim)`` centroids of ``points``; stops early once no assignment changes.

    An emptied cluster keeps its previous centroid rather than being re-seeded at random."""
    if len(points) < k:
        raise ValueError(f"k-means needs at least k={k} points, got {len(points)}")
    points = points.float()
    centroids = kmeans_pp(points, k, torch.Generator().manual_seed(seed))
    labels = assign(points, centroids)
    for _ in range(iterations):
        counts = torch.bincount(labels, minlength=k).unsqueeze(1)
        sums = torch.zeros_like(centroids).index_add_(0, labels, points)
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
        new_labels = assign(points, centroids)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
    return centroids
