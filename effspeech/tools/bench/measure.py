"""Timers and peak memory inside one benchmark process."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device) -> float:
    """Wall-clock seconds of ``fn()``; on CUDA the queued kernels are waited for on both sides."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _status_kib(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (Linux), None where there is none."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak memory since ``reset()``: CUDA's max allocated bytes, or on CPU the process's peak RSS.

    On Linux the RSS high-water mark (VmHWM) is reset through /proc/self/clear_refs, after glibc has handed
    the heap freed since loading back to the system, so neither the loading transient (file and model both
    in memory) nor its leftovers mask the training peak; where that is refused the process's lifetime peak
    (ru_maxrss) is all there is, and ``resettable`` says so."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.resettable = device.type == "cuda"

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        _return_free_heap()
        try:
            CLEAR_REFS.write_text("5")
            self.resettable = _status_kib("VmHWM") is not None
        except OSError:
            self.resettable = False

    def read(self) -> int:
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        kib = _status_kib("VmHWM") if self.resettable else None
        if kib is None:
            kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return kib * 1024


def _return_free_heap() -> None:
    """glibc keeps freed heap pages resident; ``malloc_trim(0)`` returns them (a no-op elsewhere)."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def resident_bytes() -> int:
    """Resident memory of this process now (Linux; 0 elsewhere), after returning freed heap pages."""
    gc.collect()
    _return_free_heap()
    return (_status_kib("VmRSS") or 0) * 1024


def lifetime_peak_rss() -> int:
    """Peak RSS of this process so far (before any reset: the load transient included)."""
    kib = _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * 1024
