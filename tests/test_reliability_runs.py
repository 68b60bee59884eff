"""Faults during training runs on Mini-SUPERB ks with a tiny HuBERT: bad files, NaN steps, a full disk,
mismatched checkpoints, and SIGKILL at a random step or inside a checkpoint write (docs/reliability.md)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import effspeech.superb  # noqa: F401  (compatibility shims before s3prl)
from effspeech.superb import records
from effspeech.superb.trainer.bad_data import BadDataError
from effspeech.superb.trainer.main import run
from effspeech.superb.trainer.pipeline import Pipeline
from tests.test_reliability import corrupt
from tests.test_trainer_e2e import REPO, train_argv

SHORT = "config.runner.total_steps=4,,config.runner.save_step=2,,config.runner.eval_step=1000"
EVERY_2_STEPS = "config.runner.save_step=2,,config.runner.eval_dataloaders=['test']"
# A subprocess entry point whose os.replace SIGKILLs the process when it is about to rename a file ending in
# $KILL_AT_REPLACE over its target: the moment between a checkpoint's complete temp file and its rename.
KILLABLE = """
import os, signal, sys
from effspeech.superb.trainer.main import main
real, target = os.replace, os.environ.get("KILL_AT_REPLACE")
def replace(src, dst):
    if target and str(dst).endswith(target):
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
os.replace = replace
sys.exit(main(sys.argv[1:]))
"""


def results(expdir: Path) -> dict:
    return json.loads((expdir / "results.json").read_text())


def corrupt_every_other_train_file(root: Path) -> set[str]:
    corrupted = set()
    for folder in sorted((root / "ks" / "speech_commands_v0.01").iterdir()):
        for index, path in enumerate(sorted(folder.glob("*.wav"))[::2]):
            corrupt(path, ("unreadable", "nan")[index % 2])
            corrupted.add(str(path))
    return corrupted


def test_bad_files_stop_naming_the_file_or_are_skipped_and_counted(tmp_path, mini_superb, hubert_tiny):
    shutil.copytree(mini_superb / "ks", tmp_path / "ks")
    corrupted = corrupt_every_other_train_file(tmp_path)
    with pytest.raises(BadDataError, match=r"bad audio (\S+\.wav): (unreadable|1 NaN/inf samples)") as stopped:
        run(train_argv("ks", tmp_path / "stop", tmp_path, hubert_tiny, SHORT))
    assert str(stopped.value).split()[2].rstrip(":") in corrupted

    run(train_argv("ks", tmp_path / "skip", tmp_path, hubert_tiny, f"{SHORT},,config.runner.on_bad_data=skip"))
    report = results(tmp_path / "skip")["train"]
    assert report["steps"] == 4 and report["bad_data"]["skipped_items"] > 0
    assert set(report["bad_data"]["files"]) <= corrupted


def test_a_nan_step_is_skipped_and_counted(tmp_path, mini_superb, hubert_tiny, monkeypatch):
    real, calls = Pipeline.forward, []

    def nan_on_second_call(self, *args, **kwargs):
        calls.append(1)
        loss = real(self, *args, **kwargs)
        return loss * float("nan") if len(calls) == 2 else loss

    monkeypatch.setattr(Pipeline, "forward", nan_on_second_call)
    run(train_argv("ks", tmp_path / "exp", mini_superb, hubert_tiny, SHORT))
    report = results(tmp_path / "exp")["train"]
    assert report["steps"] == 4 and report["nonfinite_steps_skipped"] == 1
    assert "non-finite loss at step 2: update skipped" in (tmp_path / "exp" / "run.log").read_text()
    adapters = records.load_state(tmp_path / "exp" / "states-4.ckpt").adapter_state
    assert all(torch.isfinite(tensor).all() for tensor in adapters.values())


def test_steps_that_stay_nan_stop_the_run_naming_the_step_and_cause(tmp_path, mini_superb, hubert_tiny):
    overflow = "config.optimizer.lr=1e30,,config.adapter.houlsby.lr=1e30,,config.runner.max_bad_steps=3"
    with pytest.raises(FloatingPointError, match=r"steps (\d)\.\.\d: non-finite loss 3 steps in a row .*learning rate"):
        run(train_argv("ks", tmp_path / "exp", mini_superb, hubert_tiny, overflow))
    assert results(tmp_path / "exp")["train"]["nonfinite_steps_skipped"] == 3


def test_a_failed_checkpoint_write_fails_loudly_and_keeps_the_previous(tmp_path, mini_superb, hubert_tiny, monkeypatch):
    real_save = torch.save

    def disk_full_at_step_4(obj, file, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("Step") == 4:
            raise OSError(28, "No space left on device")
        real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_at_step_4)
    expdir = tmp_path / "exp"
    with pytest.raises(OSError, match="No space left on device"):
        run(train_argv("ks", expdir, mini_superb, hubert_tiny, SHORT))
    assert records.load_state(expdir / "states-2.ckpt").step == 2
    assert sorted(p.name for p in expdir.iterdir() if ".ckpt" in p.name) == ["states-2.ckpt"]  # no temp file


def test_mismatched_checkpoints_are_refused_showing_the_difference(tmp_path, mini_superb, hubert_tiny):
    one_step = "config.runner.total_steps=1,,config.runner.save_step=1,,config.runner.eval_step=1000"
    run(train_argv("ks", tmp_path / "houlsby", mini_superb, hubert_tiny, one_step))
    init = ["-i", str(tmp_path / "houlsby" / "states-1.ckpt")]

    argv = train_argv("ks", tmp_path / "lora", mini_superb, hubert_tiny, one_step, *init)
    argv[argv.index("houlsby")] = "lora"
    with pytest.raises(ValueError, match=r"methods: checkpoint has \['houlsby'\], this model has \['lora'\]"):
        run(argv)
    smaller = f"{one_step},,config.adapter.houlsby.bottleneck=8"
    with pytest.raises(ValueError, match=r"shape mismatches .*down.weight: checkpoint \(32, 128\) vs model \(8, 128\)"):
        run(train_argv("ks", tmp_path / "small", mini_superb, hubert_tiny, smaller, *init))
    argv[argv.index("lora")] = "none"
    with pytest.raises(ValueError, match=r"checkpoint holds adapters \['houlsby'\]; this run has none"):
        run(argv)
    argv = train_argv("ic", tmp_path / "ic", mini_superb, hubert_tiny, "", *init)
    with pytest.raises(ValueError, match="checkpoint holds a 'speech_commands' head; this run is 'fluent_commands'"):
        run(argv)


def launch(expdir: Path, data: Path, upstream: str, *flags: str, kill_at_replace: str = "") -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "KILL_AT_REPLACE": kill_at_replace}
    argv = train_argv("ks", expdir, data, upstream, EVERY_2_STEPS)
    return subprocess.Popen([sys.executable, "-c", KILLABLE, *argv, *flags], cwd=expdir.parent, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip


def finish(process: subprocess.Popen) -> int:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode in (0, -signal.SIGKILL), stderr[-3000:]
    return process.returncode


def assert_same_run(a: Path, b: Path) -> None:
    """Adapters, featurizer and head bit-identical, and the same test metric."""
    x, y = records.load_state(a / "states-8.ckpt"), records.load_state(b / "states-8.ckpt")
    assert all(torch.equal(v, y.adapter_state[k]) for k, v in x.adapter_state.items())
    for part in ("featurizer", "downstream"):
        assert all(torch.equal(v, getattr(y, part)[k]) for k, v in getattr(x, part).items()), part
    assert results(a)["metrics"]["test"] == results(b)["metrics"]["test"]


@pytest.mark.slow
def test_sigkill_at_a_random_step_or_inside_a_save_resumes_to_the_same_run(tmp_path, mini_superb, hubert_tiny):
    straight, in_save, anywhere = tmp_path / "straight", tmp_path / "in_save", tmp_path / "anywhere"
    jobs = [launch(straight, mini_superb, hubert_tiny)]
    # killed between writing states-4.ckpt's temp file and renaming it: states-2.ckpt must still load
    jobs.append(launch(in_save, mini_superb, hubert_tiny, kill_at_replace="states-4.ckpt"))
    # killed as soon as run.log shows a random step (2..7)
    kill_step = random.randint(2, 7)
    print(f"SIGKILL after step {kill_step}")
    jobs.append(launch(anywhere, mini_superb, hubert_tiny))
    while f"step {kill_step} loss" not in _read(anywhere / "run.log"):
        assert jobs[2].poll() is None, "the run ended before the kill"
        time.sleep(0.02)
    jobs[2].kill()
    assert [finish(job) for job in jobs] == [0, -signal.SIGKILL, -signal.SIGKILL]

    assert [p.name for p in records.states_checkpoints(in_save)] == ["states-2.ckpt"]
    assert [p.name for p in in_save.glob(".states-4.ckpt.*.tmp")]  # the killed write's temp file, ignored
    for expdir in (in_save, anywhere):
        last_step = records.load_state(records.states_checkpoints(expdir)[-1]).step
        assert last_step <= kill_step
        assert finish(launch(expdir, mini_superb, hubert_tiny, "-a")) == 0
        assert results(expdir)["train"]["resumed_from_step"] == last_step
        assert_same_run(straight, expdir)


def _read(path: Path) -> str:
    return path.read_text() if path.is_file() else ""
