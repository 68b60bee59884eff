"""Every random choice comes from (seed, task, index), never from worker order."""

from __future__ import annotations

import zlib

import numpy as np


def rng_for(seed: int, *key: str | int) -> np.random.Generator:
    """A generator keyed by the seed and a path of names/indices (strings hashed with CRC-32, stable)."""
    words = [zlib.crc32(part.encode()) if isinstance(part, str) else int(part) for part in key]
    return np.random.default_rng([int(seed), *words])
