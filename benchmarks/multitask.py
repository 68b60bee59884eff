"""What ``load_tasks`` saves: several task checkpoints served from one upstream in memory, against one
``load_task`` copy of the upstream per task. On a HuBERT Base-sized random upstream (94.7 M parameters),
four tasks are trained for a few steps on Mini-SUPERB ``tiny`` (KS twice with Houlsby adapters, IC with
LoRA, SID on the weighted sum), then measured in one process:

- memory: the tensor bytes of the upstream and of each task's own part (adapters, featurizer, head),
  and the resident memory of the served set against four separate task models;
- switch time: ``TaskSet.use`` between tasks with different methods (activation only) and between two
  tasks with the same method (its tensors copied in place), median of many;
- throughput of mixed-task requests: one recording per request, task drawn at random, served set and
  separate models interleaved request by request, as a ratio.

    python benchmarks/multitask.py --out /tmp/multitask [--requests 60]

Training and measurement run on the CPU; speed is reported as ratios within the run."""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import soundfile
import torch

import effspeech.superb  # noqa: F401  (compatibility shims before s3prl)
from effspeech.superb.inference import load_task, load_tasks
from effspeech.superb.random_upstream import make_checkpoint
from effspeech.superb.trainer.main import run
from effspeech.tools.bench.measure import resident_bytes
from effspeech.tools.synth.cache import cached_corpus

TASKS = {"ks": "houlsby", "ks2": "houlsby", "ic": "lora", "sid": "none"}  # ks2: a second Houlsby task
ALIASES = {"ks": "ks", "ks2": "ks", "ic": "ic", "sid": "sid"}  # its task, and its Mini-SUPERB folder
SMALL = {  # small batches: a few steps of HuBERT Base on two cores
    "ks": "config.downstream_expert.datarc.batch_size=2",
    "ic": "config.downstream_expert.datarc.train_batch_size=2",
    "sid": "config.downstream_expert.datarc.train_batch_size=2,,config.downstream_expert.datarc.max_timestep=32000",
}


def train(out: Path, name: str, data: Path, upstream: Path, seed: int) -> Path:
    task = ALIASES[name]
    expdir = out / name
    if not (expdir / "states-2.ckpt").is_file():
        steps = "config.runner.total_steps=2,,config.runner.save_step=2,,config.runner.eval_step=1000"
        overrides = f"{SMALL[task]},,{steps}"
        run(["-m", "train", "-u", "hubert_adapter", "-k", str(upstream), "-d", task, "-p", str(expdir),
             "--adapter", TASKS[name], "--data-root", str(data), "--device", "cpu", "-o", overrides,
             "--seed", str(seed)])  # fmt: skip
    return expdir / "states-2.ckpt"


def tensor_bytes(*modules: torch.nn.Module) -> int:
    seen, total = set(), 0
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            if id(tensor) not in seen:
                seen.add(id(tensor))
                total += tensor.numel() * tensor.element_size()
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--switches", type=int, default=200)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    upstream = args.out / "hubert_base.pt"
    if not upstream.is_file():
        make_checkpoint("hubert_base", 0, upstream)
    data = cached_corpus("tiny", 0, 2)
    ckpts = {name: train(args.out, name, data, upstream, seed) for seed, name in enumerate(TASKS)}

    base = resident_bytes()
    served = load_tasks(ckpts)
    served_rss = resident_bytes() - base
    alone = {name: load_task(path) for name, path in ckpts.items()}
    alone_rss = resident_bytes() - base - served_rss

    upstream_bytes = tensor_bytes(served.model.upstream) - tensor_bytes(served.adapters._container)
    print("## Memory\n\n| part | MB | share of the upstream |\n|---|---|---|")
    print(f"| upstream (HuBERT Base, fp32) | {upstream_bytes / 1e6:.1f} | 100 % |")
    for name, part in served.parts.items():
        adapters = sum(t.numel() * t.element_size() for t in served._states[name].values())
        own = adapters + tensor_bytes(part.featurizer, part.head)
        share = 100 * own / upstream_bytes
        print(f"| {name} ({TASKS[name]}): adapters + featurizer + head | {own / 1e6:.2f} | {share:.2f} % |")
    print(f"\nResident memory: {len(ckpts)} tasks served from one upstream {served_rss / 1e6:.0f} MB, "
          f"{len(ckpts)} separate task models {alone_rss / 1e6:.0f} MB.\n")  # fmt: skip

    print(f"## Switch time (median of {args.switches})\n")
    print("| switch | what it does | median ms |\n|---|---|---|")
    for a, b, what in (("ks", "ic", "activation only (houlsby <-> lora)"),
                       ("ks", "sid", "activation only (houlsby <-> none)"),
                       ("ks", "ks2", "houlsby tensors copied in place")):  # fmt: skip
        times = []
        for _ in range(args.switches):
            for name in (a, b):
                start = time.perf_counter()
                served.use(name)
                times.append(time.perf_counter() - start)
        print(f"| {a} <-> {b} | {what} | {1e3 * statistics.median(times):.3f} |")

    files = {name: sorted((data / folder).rglob("*.wav"))[:20] for name, folder in ALIASES.items()}
    waves = {name: [soundfile.read(path, dtype="float32")[0] for path in paths] for name, paths in files.items()}
    rng = random.Random(0)
    requests = [(name, rng.choice(waves[name])) for name in rng.choices(list(TASKS), k=args.requests)]
    served_s = alone_s = 0.0
    for name, wave in requests:  # interleaved, so that load on the machine hits both alike
        start = time.perf_counter()
        a = served.predict([wave], task=name)
        served_s += time.perf_counter() - start
        start = time.perf_counter()
        b = alone[name].predict([wave])
        alone_s += time.perf_counter() - start
        assert a == b, (name, a, b)
    print(f"\n## Mixed requests\n\n{args.requests} requests, one recording each (KS, IC, SID clips), task drawn at "
          f"random: one upstream {served_s:.1f} s, separate models {alone_s:.1f} s; ratio {served_s / alone_s:.3f}. "
          "Every prediction was identical.")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
