"""run_downstream.py end to end on Mini-SUPERB (tiny) with a tiny random HuBERT: every SUPERB task trains
with an adapter, evaluates from its checkpoint and resumes exactly; DDP keeps ranks identical."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import effspeech.superb  # noqa: F401  (compatibility shims before s3prl)
from effspeech.superb.random_upstream import make_checkpoint
from effspeech.superb.tasks import by_alias
from effspeech.superb.trainer.main import run
from effspeech.tools.synth import espeak

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which(espeak.BINARY), reason="espeak-ng is not installed (Mini-SUPERB needs it)"),
]

REPO = Path(__file__).resolve().parents[1]
STEPS = 8
# Small batches and heads so a step takes well under a second on two CPU cores.
TASK_OVERRIDES = {
    "ks": "datarc.batch_size=4",
    "ic": "datarc.train_batch_size=4,,datarc.eval_batch_size=16",
    "sid": "datarc.train_batch_size=4,,datarc.eval_batch_size=8,,datarc.max_timestep=32000",
    "er": "datarc.train_batch_size=4,,datarc.eval_batch_size=16",
    "asr": "datarc.batch_size=4,,datarc.eval_batch_size=8,,modelrc.project_dim=32,,modelrc.RNNs.dim=[32,32]",
    "sd": "loaderrc.train_batchsize=2,,datarc.chunk_size=200,,modelrc.hidden_size=32",
}
ACCUMULATE = {"sid": 2, "er": 2}  # the recipes accumulate; two tasks keep it on to test resume with it


def overrides(task: str, steps: int = STEPS, save_step: int = STEPS // 2) -> str:
    loader = "loaderrc" if task == "sd" else "datarc"
    options = [f"config.downstream_expert.{option}" for option in TASK_OVERRIDES[task].split(",,")]
    options += [
        f"config.downstream_expert.{loader}.num_workers=0",
        f"config.runner.total_steps={steps}",
        "config.runner.log_step=1",
        f"config.runner.eval_step={steps}",
        f"config.runner.save_step={save_step}",
        "config.runner.max_keep=2",
        f"config.runner.gradient_accumulate_steps={ACCUMULATE.get(task, 1)}",
        "config.optimizer.lr=3.0e-3",
        "config.adapter.houlsby.lr=3.0e-3",
    ]
    return ",,".join(options)


def train_argv(task: str, expdir: Path, data: Path, upstream: str, more: str = "", *flags: str) -> list[str]:
    """A new experiment's flags; ``more`` are extra -o overrides (one -o flag holds them all)."""
    options = overrides(task) + (f",,{more}" if more else "")
    return [
        "-m", "train", "-u", "hubert_adapter", "-k", upstream, "-d", task, "-p", str(expdir),
        "--adapter", "houlsby", "--data-root", str(data), "--device", "cpu", "-o", options, *flags,
    ]  # fmt: skip


@pytest.fixture
def fixed_batch(monkeypatch):
    """Train on the epoch's first batch over and over: a loss that must go down, whatever the data order."""
    from effspeech.superb.trainer import runner as runner_module

    real = runner_module.epoch_loader

    def first_batch_only(loader, seed, epoch, skip_batches=0):
        batches = real(loader, seed, epoch)
        python_state = random.getstate()  # a random crop must not depend on when the batch is drawn
        random.seed(seed)
        first = list(next(iter(batches)))  # recipes collate with zip(): materialise to reuse it
        random.setstate(python_state)
        return [first] * (len(batches) - skip_batches)

    monkeypatch.setattr(runner_module, "epoch_loader", first_batch_only)


def load(path: Path) -> dict:
    """A checkpoint as it is on disk (the keys are a file format: tests read them, not the records module)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def results(expdir: Path) -> dict:
    return json.loads((expdir / "results.json").read_text())


@pytest.mark.parametrize("task", list(TASK_OVERRIDES))
def test_task_trains_evaluates_and_resumes(task, tmp_path, mini_superb, hubert_tiny, fixed_batch):
    import s3prl.hub

    info = by_alias(task)
    expdir = tmp_path / "exp"
    runner = run(train_argv(task, expdir, mini_superb, hubert_tiny))

    # only adapters trained: the upstream's own tensors equal a fresh load of the checkpoint
    fresh = dict(s3prl.hub.hubert_local(ckpt=hubert_tiny).model.named_parameters())
    trained = runner.adapters.anatomy.parameters
    assert set(trained) == set(fresh)
    assert all(torch.equal(trained[name], fresh[name]) for name in fresh)

    # the checkpoint holds adapters + featurizer + head, no frozen upstream tensor, and loads weights_only
    state = load(expdir / f"states-{STEPS}.ckpt")
    assert "Upstream" not in state
    assert set(state["Adapter"]["state"]) == {key for key, _ in runner.adapters.named_parameters()}
    assert sum(t.numel() for t in state["Adapter"]["state"].values()) == runner.trainable["upstream"] > 0
    assert state["Adapter"]["spec"] == runner.adapters.spec and state["Step"] == STEPS

    # results.json: the recipe's dev/test metrics, counts and the loss going down
    report = results(expdir)
    assert report["task"] == info.name and report["adapter"] == runner.adapters.spec
    assert report["trainable_params"]["upstream"] == runner.trainable["upstream"]
    assert report["train"]["steps"] == STEPS and report["train"]["wall_time_s"] > 0
    first_dev = next(iter(runner.config["runner"]["eval_dataloaders"]))
    assert info.metric in report["metrics"][first_dev]
    losses = [entry["loss"] for entry in report["train"]["train_loss"]]
    assert len(losses) == STEPS
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses

    # -m evaluate -e CKPT: rebuilt from the checkpoint alone, reports the test split's metric
    run(["-m", "evaluate", "-e", str(expdir / f"states-{STEPS}.ckpt"), "--device", "cpu"])
    evaluated = results(expdir)["evaluate"]
    assert evaluated["split"] == info.test_split and info.metric in evaluated["metrics"][info.test_split]

    # -e states-<half>.ckpt continues at that step and ends bit-identical to the uninterrupted run
    # (optimizer, scheduler and RNG restored; the data order is covered by test_auto_resume_* and the unit tests)
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    shutil.copy(expdir / f"states-{STEPS // 2}.ckpt", resumed_dir)
    resume = ["-m", "train", "-e", str(resumed_dir / f"states-{STEPS // 2}.ckpt"), "--device", "cpu"]
    run([*resume, "-o", "config.runner.eval_step=1000"])
    assert results(resumed_dir)["train"]["resumed_from_step"] == STEPS // 2
    again = load(resumed_dir / f"states-{STEPS}.ckpt")
    for part in ("Featurizer", "Downstream"):  # best_score is a buffer that only evaluation changes
        assert all(torch.equal(state[part][k], again[part][k]) for k in state[part] if k != "best_score"), part
    assert all(torch.equal(v, again["Adapter"]["state"][k]) for k, v in state["Adapter"]["state"].items())


def test_auto_resume_replays_the_data_order(tmp_path, mini_superb, hubert_tiny):
    """-a picks up the latest states-*.ckpt mid-epoch; the result equals one uninterrupted run."""
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    run(train_argv("ks", straight, mini_superb, hubert_tiny, "config.runner.eval_step=1000"))
    first_half = f"config.runner.eval_step=1000,,config.runner.total_steps={STEPS // 2}"
    run(train_argv("ks", interrupted, mini_superb, hubert_tiny, first_half))
    run(train_argv("ks", interrupted, mini_superb, hubert_tiny, f"config.runner.total_steps={STEPS}", "-a"))
    report = results(interrupted)["train"]
    assert report["resumed_from_step"] == STEPS // 2 and report["steps"] == STEPS
    assert [e["step"] for e in report["train_loss"]] == list(range(1, STEPS + 1))
    assert report["train_loss"] == results(straight)["train"]["train_loss"]
    a, b = load(straight / f"states-{STEPS}.ckpt"), load(interrupted / f"states-{STEPS}.ckpt")
    assert all(torch.equal(v, b["Adapter"]["state"][k]) for k, v in a["Adapter"]["state"].items())


def test_ddp_two_processes_keep_identical_adapters(tmp_path, mini_superb, hubert_tiny):
    expdir = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        str(REPO / "run_downstream.py"), *train_argv("ks", expdir, mini_superb, hubert_tiny),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    report = results(expdir)["train"]
    assert report["world_size"] == 2 and report["steps"] == STEPS
    first, second = report["trainable_digest_per_rank"]
    assert first == second


@pytest.mark.parametrize("finetune", [False, True], ids=["weighted-sum", "fine-tune"])
def test_baselines_without_adapters(finetune, tmp_path, mini_superb, hubert_tiny):
    """--adapter none: S3PRL's frozen weighted-sum baseline; -f: the whole upstream but its CNN extractor
    (S3PRL's experts run it under no_grad), which then is the only upstream part left out of the checkpoint."""
    expdir = tmp_path / "exp"
    argv = train_argv("ks", expdir, mini_superb, hubert_tiny, "config.runner.total_steps=2,,config.runner.save_step=2")
    argv[argv.index("houlsby")] = "none"
    runner = run([*argv, "-f"] if finetune else argv)
    assert runner.adapters is None and runner.pipeline.upstream_trains == finetune
    state = load(expdir / "states-2.ckpt")
    assert state["Adapter"] == {"spec": {}, "state": {}}
    if finetune:
        saved = set(state["Upstream"])
        assert saved and not any("feature_extractor" in name for name in saved)
        assert sum(state["Upstream"][name].numel() for name in saved) == runner.trainable["upstream"]
    else:
        assert "Upstream" not in state and runner.trainable["upstream"] == 0
    run(["-m", "evaluate", "-e", str(expdir / "states-2.ckpt"), "--device", "cpu"])
    assert "acc" in results(expdir)["evaluate"]["metrics"]["test"]


def test_base_size_houlsby_checkpoint_is_a_few_megabytes(tmp_path, mini_superb):
    upstream = make_checkpoint("hubert_base", 0, tmp_path / "hubert_base.pt")
    expdir = tmp_path / "exp"
    more = "config.runner.total_steps=1,,config.runner.save_step=1,,config.downstream_expert.datarc.batch_size=2"
    runner = run(train_argv("ks", expdir, mini_superb, str(upstream), more))
    size = (expdir / "states-1.ckpt").stat().st_size
    # adapters + featurizer + head with Adam's two moments: ~12 bytes per trainable value (the frozen
    # upstream alone would be ~380 MB)
    assert size < 16 * runner.trainable["total"] and size < 16e6, size
