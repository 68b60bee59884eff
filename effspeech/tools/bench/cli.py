"""``effspeech bench``: random-initialised upstream, one subprocess per method and round, methods interleaved
in rounds (rotated each round) so that machine drift hits every method alike; table on stdout, rows as JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from effspeech.errors import ConfigError
from effspeech.tools.bench.job import Job

UNCACHEABLE = ("finetune", "finetune_cnn_frozen", "peft_lora")  # the upstream's own tensors train: no frozen part


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-u",
        "--upstream",
        help="hubert_adapter, wav2vec2_adapter, wavlm_adapter, hf_hubert_adapter, ... (default: --arch's)",
    )
    parser.add_argument(
        "--arch", default="hubert_base", help="random-initialised shape (hubert_base, wavlm_tiny, hf_hubert_base, ...)"
    )
    parser.add_argument(
        "--ckpt", help="use this checkpoint of --arch's family instead of a random one (a directory for hf_ archs)"
    )
    parser.add_argument(
        "--methods",
        help="comma list of none, finetune and adapter methods, or all (the default: every one, plugins included); "
        "finetune adds finetune_cnn_frozen (S3PRL's -f), lora adds peft_lora when peft is installed",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="bf16: autocast")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each utterance")
    parser.add_argument("--steps", type=int, default=5, help="timed train steps (and frozen forwards) per run")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before the timed ones")
    parser.add_argument("--rounds", type=int, default=2, help="each method runs once per round, in its own process")
    parser.add_argument("--infer-reps", type=int, default=10, help="paired forwards for the inference overheads")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="measure each method eager and compiled (the transformer encoder, as the trainer's --compile)",
    )
    parser.add_argument(
        "--cache", action="store_true", help="add <method>+cache: the frozen part below it read from a warm cache"
    )
    parser.add_argument("--threads", type=int, help="torch threads per worker (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the rows here")


def upstream_entry(upstream: str | None, arch: str) -> str:
    """The effspeech entry that loads ``--arch``'s checkpoint (an S3PRL file or a transformers directory);
    an ``-u`` name must be that entry, or an S3PRL entry of the same family."""
    from effspeech.superb.random_upstream import ARCHS
    from effspeech.superb.transformers_upstream import ARCHS as TRANSFORMERS_ARCHS
    from effspeech.superb.upstream import ENTRIES, family_of

    if arch in TRANSFORMERS_ARCHS:
        entry = f"hf_{TRANSFORMERS_ARCHS[arch][0]}_adapter"
        if upstream is not None and upstream != entry:
            raise ConfigError(f"--arch {arch} is a transformers model, which -u {entry} loads, not -u {upstream}")
        return entry
    if arch not in ARCHS:
        raise ConfigError(f"unknown --arch {arch!r}; valid: {', '.join(sorted([*ARCHS, *TRANSFORMERS_ARCHS]))}")
    family = ARCHS[arch][0]
    if upstream in ENTRIES and ENTRIES[upstream].transformers:
        raise ConfigError(f"-u {upstream} loads a transformers directory, --arch {arch} is an S3PRL checkpoint")
    if upstream is not None and family_of(upstream) != family:
        raise ConfigError(f"-u {upstream} is a {family_of(upstream)} upstream but --arch {arch} is a {family} one")
    return f"{family}_adapter"


def run(args: argparse.Namespace) -> int:
    from effspeech.superb.methods import ALL, expand_all
    from effspeech.superb.random_upstream import make_checkpoint
    from effspeech.superb.transformers_upstream import ARCHS, make_transformers_checkpoint
    from effspeech.tools.bench.setups import expand_methods
    from effspeech.tools.bench.table import aggregate, format_table, write_json

    upstream = upstream_entry(args.upstream, args.arch)
    names = [name.strip() for name in (args.methods or ALL).split(",") if name.strip()]
    methods = expand_methods(expand_all(names))
    make = make_transformers_checkpoint if args.arch in ARCHS else make_checkpoint
    variants = [
        (compiled, cached)
        for compiled in (False, True)[: 1 + args.compile]
        for cached in (False, True)[: 1 + args.cache]
    ]
    with tempfile.TemporaryDirectory(prefix="effspeech-bench-") as scratch:
        ckpt = args.ckpt or str(make(args.arch, args.seed, Path(scratch, args.arch)))
        template = Job(
            method="",
            upstream=upstream,
            ckpt=ckpt,
            out=str(Path(scratch, "result.json")),
            device=args.device,
            dtype=args.dtype,
            batch=args.batch,
            seconds=args.seconds,
            steps=args.steps,
            warmup=args.warmup,
            infer_reps=args.infer_reps,
            threads=args.threads,
            seed=args.seed,
        )
        runs = []
        for round_index in range(args.rounds):
            shift = round_index % len(methods)
            label = f"[round {round_index + 1}/{args.rounds}]"
            for method in methods[shift:] + methods[:shift]:
                for compiled, cached in variants:
                    if cached and method in UNCACHEABLE:
                        continue
                    job = dataclasses.replace(template, method=method, compile=compiled, cache=cached)
                    runs.append(run_worker(job, Path(scratch, "job.json"), label))
    context = {key: getattr(args, key) for key in ("device", "dtype", "arch", "batch", "seconds", "steps")}
    rows = aggregate(runs, context)
    print(format_table(rows))
    if args.json:
        write_json(rows, args.json)
    return 1 if any("error" in row for row in rows) else 0


def run_worker(job: Job, job_path: Path, label: str) -> dict:
    """One method in a fresh interpreter; a failure becomes an ``error`` result, not the end of the benchmark."""
    job.write(job_path)
    Path(job.out).unlink(missing_ok=True)
    name = job.method + ("+compile" if job.compile else "") + ("+cache" if job.cache else "")
    start = time.perf_counter()
    command = [sys.executable, "-W", "ignore", "-m", "effspeech.tools.bench.worker", str(job_path)]
    process = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if process.returncode != 0 or not Path(job.out).is_file():
        error = (process.stderr.strip() or f"worker exited with {process.returncode}")[-2000:]
        print(f"{label} {name}: FAILED after {elapsed:.0f} s\n{error}", file=sys.stderr, flush=True)
        return {"method": job.method, "compiled": job.compile, "cached": job.cache, "error": error}
    result = json.loads(Path(job.out).read_text())
    print(
        f"{label} {name}: step {result['step_s']:.3f} s, F {result['forward_s']:.3f} s ({elapsed:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    return result
