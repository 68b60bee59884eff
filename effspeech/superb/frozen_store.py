"""The on-disk format of the frozen-computation cache: one file per entry, sharded by the first two hex
digits of its key, under a folder per namespace (upstream checkpoint, cut, version, dtype: ``meta.json``
says which), so that runs and leaderboard cells with the same upstream and cut share entries.

An entry is ``MAGIC``, a 4-byte header length, a JSON header (dtype, shape, CRC-32 of the data) and the
array's bytes. It is written to a temp file and renamed (``files.atomic_write``), so a reader sees a
whole entry or none; one that is torn anyway (a crash before the data reached the disk) or damaged fails
its length or checksum, is deleted and computed again, never used. Several processes may fill one
store: two writers of one key write the same bytes. Reads are memory-mapped."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import struct
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from effspeech.errors import ConfigError, WriteError
from effspeech.files import atomic_write

MAGIC = b"EFFCACHE"
FORMAT = 1
DTYPES = {"fp32": np.float32, "fp16": np.float16}
UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def default_root() -> Path:
    """The per-user cache folder runs share: ``$EFFSPEECH_CACHE`` or ``~/.cache/effspeech/frozen``."""
    return Path(os.environ.get("EFFSPEECH_CACHE") or Path.home() / ".cache" / "effspeech" / "frozen")


def parse_size(text: str | int | None) -> int | None:
    """``--cache-size``: bytes, or a number with K, M, G or T (powers of 1024); None: no budget."""
    if text is None or isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(?:I?B)?\s*", str(text).upper())
    if match is None or float(match[1]) <= 0:
        raise ConfigError(f"--cache-size {text!r}: expected a positive size such as 500M, 20G or 1048576")
    return int(float(match[1]) * UNITS[match[2]])


def input_key(samples: np.ndarray) -> str:
    """The key of one input: SHA-256 of its exact float32 samples (a new crop or segment is a new key)."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    return hashlib.sha256(struct.pack("<q", samples.size) + samples.tobytes()).hexdigest()


@dataclass
class StoreStats:
    hits: int = 0
    misses: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    entries_written: int = 0
    corrupt_recomputed: int = 0
    full: bool = False  # the size budget was reached: later misses were computed and not stored


class FrozenStore:
    """Entries of one namespace under ``root``; ``get`` and ``put`` by input key."""

    def __init__(self, root: str | Path, namespace: dict[str, Any], dtype: str = "fp32", size: int | None = None):
        if dtype not in DTYPES:
            raise ConfigError(f"--cache-dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
        self.root = Path(root)
        self.dtype = dtype
        self.size = size
        self.namespace = {**namespace, "dtype": dtype, "format": FORMAT}
        name = hashlib.sha256(json.dumps(self.namespace, sort_keys=True).encode()).hexdigest()[:16]
        self.folder = self.root / name
        self.stats = StoreStats()
        self._used: int | None = None  # bytes under root, counted once, then kept up to date
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            meta = self.folder / "meta.json"
            if not meta.exists():
                atomic_write(meta, json.dumps(self.namespace, indent=1, sort_keys=True).encode())
        except OSError as error:
            raise WriteError(f"cannot create the frozen cache {self.folder}: {error.strerror or error}") from error

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.bin"

    def get(self, key: str) -> np.ndarray | None:
        """The entry's array (read-only, memory-mapped), or None: absent, or damaged (then deleted)."""
        path = self.path(key)
        try:
            with open(path, "rb") as file:
                mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except (FileNotFoundError, ValueError):  # ValueError: an empty file cannot be mapped
            if path.exists():
                self._discard(path)
            self.stats.misses += 1
            return None
        array = _decode(mapped)
        if array is None:
            self._discard(path)
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        self.stats.bytes_read += array.nbytes
        return array

    def put(self, key: str, array: np.ndarray) -> None:
        """Store an entry, unless the size budget is reached (then the caller just keeps computing)."""
        data = _encode(np.ascontiguousarray(array, dtype=DTYPES[self.dtype]))
        if self.size is not None:
            if self._used is None:
                self._used = _bytes_under(self.root)
            if self._used + len(data) > self.size:
                self.stats.full = True
                return
        path = self.path(key)
        path.parent.mkdir(exist_ok=True)
        atomic_write(path, data, durable=False)
        self.stats.bytes_written += len(data)
        self.stats.entries_written += 1
        if self._used is not None:
            self._used += len(data)

    def _discard(self, path: Path) -> None:
        self.stats.corrupt_recomputed += 1
        path.unlink(missing_ok=True)

    def summary(self) -> dict[str, Any]:
        return {"dir": str(self.folder), "dtype": self.dtype, "size_budget": self.size, **asdict(self.stats)}


def _encode(array: np.ndarray) -> bytes:
    payload = array.tobytes()
    header = json.dumps({"dtype": array.dtype.str, "shape": list(array.shape), "crc32": zlib.crc32(payload)})
    return MAGIC + struct.pack("<I", len(header)) + header.encode() + payload


def _decode(mapped: mmap.mmap) -> np.ndarray | None:
    """The array of a whole, undamaged entry; None for anything else."""
    try:
        if mapped[: len(MAGIC)] != MAGIC:
            return None
        (length,) = struct.unpack("<I", mapped[len(MAGIC) : len(MAGIC) + 4])
        start = len(MAGIC) + 4 + length
        header = json.loads(mapped[len(MAGIC) + 4 : start])
        dtype, shape = np.dtype(header["dtype"]), tuple(header["shape"])
        count = int(np.prod(shape))
        if len(mapped) != start + count * dtype.itemsize:
            return None
        array = np.frombuffer(mapped, dtype=dtype, count=count, offset=start).reshape(shape)
        if zlib.crc32(memoryview(mapped)[start:]) != header["crc32"]:
            return None
        return array
    except (struct.error, ValueError, KeyError, TypeError):
        return None


def _bytes_under(root: Path) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total
