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

import effspeech
from effspeech.bench.report import aggregate, format_table, write_json
from effspeech.bench.setups import FINETUNE, NONE, PEFT_LORA, expand_methods
from effspeech.bench.worker import Job, write_job
from effspeech.checkpoints import ARCHS, make_checkpoint

UPSTREAM_SUFFIXES = ("_adapter", "_local")


def default_methods() -> str:
    return ",".join([NONE, FINETUNE, *effspeech.available_adapters()])


def upstream_family(upstream: str | None, arch: str) -> str:
    """The s3prl family an ``-u`` name loads (``hubert_adapter`` -> hubert); it must be ``--arch``'s."""
    family = ARCHS[arch][0]
    if upstream is None:
        return family
    name = upstream
    for suffix in UPSTREAM_SUFFIXES:
        name = name.removesuffix(suffix)
    if name != family:
        raise ValueError(f"-u {upstream} is a {name} upstream but --arch {arch} is a {family} architecture")
    return family


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="time, memory, checkpoint size per method", description=__doc__)
    parser.add_argument("-u", "--upstream", help="hubert_adapter, wav2vec2_adapter, wavlm_adapter (default: --arch's)")
    parser.add_argument("--arch", default="hubert_base", choices=sorted(ARCHS), help="random-initialised shape")
    parser.add_argument("--ckpt", help="use this S3PRL checkpoint of --arch's family instead of a random one")
    parser.add_argument(
        "--methods",
        default=default_methods(),
        help="comma list of none, finetune and adapter methods; finetune adds finetune_cnn_frozen (S3PRL's -f), "
        f"lora adds {PEFT_LORA} when peft is installed",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="bf16: autocast")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each utterance")
    parser.add_argument("--steps", type=int, default=5, help="timed train steps (and frozen forwards) per run")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before the timed ones")
    parser.add_argument("--rounds", type=int, default=2, help="each method runs once per round, in its own process")
    parser.add_argument("--infer-reps", type=int, default=10, help="paired forwards for the inference overheads")
    parser.add_argument("--compile", action="store_true", help="measure each method eager and torch.compile'd")
    parser.add_argument("--threads", type=int, help="torch threads per worker (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the rows here")
    parser.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    family = upstream_family(args.upstream, args.arch)
    methods = expand_methods([name.strip() for name in args.methods.split(",") if name.strip()])
    variants = [False, True] if args.compile else [False]
    with tempfile.TemporaryDirectory(prefix="effspeech-bench-") as scratch:
        ckpt = args.ckpt or str(make_checkpoint(args.arch, args.seed, Path(scratch, f"{args.arch}.ckpt")))
        template = Job(
            method="",
            family=family,
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
                for compiled in variants:
                    job = dataclasses.replace(template, method=method, compile=compiled)
                    runs.append(run_worker(job, Path(scratch, "job.json"), label))
    context = {key: getattr(args, key) for key in ("device", "dtype", "arch", "batch", "seconds", "steps")}
    rows = aggregate(runs, context)
    print(format_table(rows))
    if args.json:
        write_json(rows, args.json)
    return 1 if any("error" in row for row in rows) else 0


def run_worker(job: Job, job_path: Path, label: str) -> dict:
    """One method in a fresh interpreter; a failure becomes an ``error`` result, not the end of the benchmark."""
    write_job(job, job_path)
    Path(job.out).unlink(missing_ok=True)
    name = job.method + ("+compile" if job.compile else "")
    start = time.perf_counter()
    command = [sys.executable, "-W", "ignore", "-m", "effspeech.bench.worker", str(job_path)]
    process = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if process.returncode != 0 or not Path(job.out).is_file():
        error = (process.stderr.strip() or f"worker exited with {process.returncode}")[-2000:]
        print(f"{label} {name}: FAILED after {elapsed:.0f} s\n{error}", file=sys.stderr, flush=True)
        return {"method": job.method, "compiled": job.compile, "error": error}
    result = json.loads(Path(job.out).read_text())
    print(
        f"{label} {name}: step {result['step_s']:.3f} s, F {result['forward_s']:.3f} s ({elapsed:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    return result
