"""The one way effspeech writes a file that must never be seen half-written (checkpoints, records,
exported adapters)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from effspeech.errors import WriteError


def atomic_write(path: str | Path, data: bytes, durable: bool = True) -> Path:
    """Write ``data`` to a temp file next to ``path``, fsync it and rename it over ``path``: a reader sees the
    old file or the complete new one. A failed write (a full disk) raises ``WriteError`` naming ``path``,
    and leaves ``path`` untouched and no temp file behind. ``durable=False`` skips the fsyncs, for files
    that carry their own checksum and can be recomputed (a cache entry): a crash may then lose or tear
    the file, never show a half-written one to a running process."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file what open() would have
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            if durable:
                os.fsync(file.fileno())
        os.replace(tmp, path)
        if durable:
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as error:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        written = WriteError(f"cannot write {path}: {error.strerror or error} (its previous version is intact)")
        written.errno = error.errno
        raise written from error
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
