"""One benchmark run: which method on which upstream, with what input and how many steps. Written as
JSON by the driver and read by the worker process that measures it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Job:
    method: str
    upstream: str  # the effspeech entry that loads ckpt: hubert_adapter, ..., hf_hubert_adapter, ...
    ckpt: str
    out: str  # where the result JSON goes
    device: str = "cpu"
    dtype: str = "fp32"  # fp32, or bf16 under autocast (fp32 master weights, as mixed-precision training)
    batch: int = 2
    seconds: float = 4.0
    steps: int = 5
    warmup: int = 1
    infer_reps: int = 10
    compile: bool = False
    cache: bool = False  # the frozen part below the method read from a warm cache (--cache-frozen)
    threads: int | None = None
    seed: int = 0

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def read(cls, path: Path) -> Job:
        return cls(**json.loads(path.read_text()))
