"""What a cluster does to a run, done for real in subprocesses: a scheduler's stop signal, a second job on
the same experiment directory, a DDP rank that dies, a disk that fills up; and bad files in the two recipes
whose items are not one file each (ER reads ahead, ASR reads buckets). docs/reliability.md lists them."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import effspeech.superb  # noqa: F401  (compatibility shims before s3prl)
from effspeech.superb import records
from effspeech.superb.tasks.asr import drop_from_bucket
from effspeech.superb.trainer import distributed
from effspeech.superb.trainer.bad_data import BadDataLog, GuardedCollate, GuardedDataset, Salvaged
from effspeech.superb.trainer.main import run
from effspeech.superb.trainer.preemption import PREEMPTED
from effspeech.tools.leaderboard.execute import run_grid
from effspeech.tools.leaderboard.grid import PRESETS, Cell, Launch
from tests.test_reliability import corrupt
from tests.test_trainer_e2e import REPO, free_port, train_argv

pytestmark = pytest.mark.slow

LONG = "config.runner.total_steps=100000,,config.runner.save_step=1000,,config.runner.eval_step=1000"


# run_downstream.py whose writes of states-*.ckpt stall in fsync for 3 s, having told SAVING where: a second
# signal can then be sent while the save is under way, not merely after the first one
SLOW_SAVES = """
import os, sys, time
from pathlib import Path
saving, fsync = Path(sys.argv.pop(1)), os.fsync
def slow_fsync(fd):
    name = os.readlink(f"/proc/self/fd/{fd}")
    if Path(name).name.startswith(".states-") and name.endswith(".tmp"):
        saving.write_text(name)
        time.sleep(3)
    fsync(fd)
os.fsync = slow_fsync
sys.argv[0] = "run_downstream.py"
from effspeech.superb.trainer.main import main
sys.exit(main())
"""


def start(argv: list[str], cwd: Path, torchrun: int = 0, saving: Path | None = None) -> subprocess.Popen:
    """``run_downstream.py`` in its own process (and session, so a test can signal it alone); with
    ``saving``, one whose checkpoint saves stall and announce themselves in that file."""
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={torchrun}",
                "--master_port", str(free_port())] if torchrun else [sys.executable]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    script = ["-c", SLOW_SAVES, str(saving)] if saving else [str(REPO / "run_downstream.py")]
    return subprocess.Popen([*launcher, *script, *argv], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip


def wait_for(condition, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before the fault: {process.stdout.read()[-3000:]}")
        assert time.time() < deadline, "timed out waiting for the run"
        time.sleep(0.05)


def finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    return output


def logged_step(expdir: Path, step: int) -> bool:
    log = expdir / "run.log"
    return log.is_file() and f"step {step} loss" in log.read_text()


STEPS_20 = "config.runner.total_steps=20,,config.runner.eval_step=1000"


def stop(expdir: Path, signals: tuple[str, ...], cwd: Path, data: Path, upstream: str) -> subprocess.Popen:
    """A long run sent ``signals`` after its third step; every one after the first while its save stalls."""
    saving = cwd / "saving"
    process = start(train_argv("ks", expdir, data, upstream, LONG), cwd, saving=saving)
    wait_for(lambda: logged_step(expdir, 3), process)
    os.kill(process.pid, getattr(signal, signals[0]))
    if signals[1:]:
        wait_for(saving.is_file, process)
    for name in signals[1:]:
        os.kill(process.pid, getattr(signal, name))
    process.wait(timeout=120)
    return process


@pytest.mark.parametrize("signals", [("SIGTERM",), ("SIGUSR1",), ("SIGTERM", "SIGTERM")], ids="+".join)
def test_a_stop_signal_saves_the_current_step_and_a_resume_ends_as_an_uninterrupted_run(
    signals, tmp_path, mini_superb, hubert_tiny
):
    straight = tmp_path / "straight"  # every part runs in a subprocess with one thread, so that sums add alike
    finish(start(train_argv("ks", straight, mini_superb, hubert_tiny, STEPS_20), tmp_path))

    expdir = tmp_path / "stopped"
    process = stop(expdir, signals, tmp_path, mini_superb, hubert_tiny)
    output = process.stdout.read()
    assert process.returncode == PREEMPTED, output[-3000:]
    (saved,) = records.states_checkpoints(expdir)
    state = records.load_state(saved)
    interrupted = records.read_results(expdir)["train"]["interrupted"]
    assert interrupted == {"signal": signals[0], "step": state.step} and 3 <= state.step < 20
    assert f"stopped on {signals[0]} at step {state.step}" in output
    assert not list(expdir.glob(".*.tmp"))
    if signals[1:]:
        assert f"{signals[1]} received while stopping on {signals[0]}: ignored" in output

    resume = train_argv("ks", expdir, mini_superb, hubert_tiny, STEPS_20, "-a")
    finish(start(resume, tmp_path))  # the command line's total_steps wins on resume
    report = records.read_results(expdir)["train"]
    assert report["resumed_from_step"] == state.step and report["steps"] == 20 and "interrupted" not in report
    a, b = records.load_state(straight / "states-20.ckpt"), records.load_state(expdir / "states-20.ckpt")
    assert all(torch.equal(value, b.adapter_state[key]) for key, value in a.adapter_state.items())


def test_ctrl_c_twice_stops_during_the_save_and_leaves_no_partial_checkpoint(tmp_path, mini_superb, hubert_tiny):
    expdir = tmp_path / "stopped"
    process = stop(expdir, ("SIGINT", "SIGINT"), tmp_path, mini_superb, hubert_tiny)
    output = process.stdout.read()
    assert process.returncode not in (0, PREEMPTED) and "KeyboardInterrupt: SIGINT while stopping on SIGINT" in output
    assert records.states_checkpoints(expdir) == [] and not list(expdir.glob(".*.tmp"))
    assert records.lock_holder(expdir) is None


def test_a_second_trainer_on_a_busy_directory_refuses_and_a_stale_lock_is_taken_over(
    tmp_path, mini_superb, hubert_tiny
):
    expdir = tmp_path / "exp"
    every_50 = "config.runner.total_steps=100000,,config.runner.save_step=50,,config.runner.eval_step=1000"
    first = start(train_argv("ks", expdir, mini_superb, hubert_tiny, every_50), tmp_path)
    wait_for(lambda: (expdir / "states-50.ckpt").is_file(), first)
    copied = tmp_path / "copied" / "states-50.ckpt"  # before the trainer prunes it
    copied.parent.mkdir()
    shutil.copy(expdir / "states-50.ckpt", copied)

    second = subprocess.run([sys.executable, str(REPO / "run_downstream.py"),
                             *train_argv("ks", expdir, mini_superb, hubert_tiny, every_50, "-a")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert second.returncode == 2, second.stderr[-3000:]
    assert f"is in use by pid {first.pid} on {socket.gethostname()}" in second.stderr
    # evaluation only reads: it runs beside the trainer (here writing its results elsewhere)
    run(["-m", "evaluate", "-e", str(copied), "-p", str(tmp_path / "eval"), "--device", "cpu"])
    assert records.is_evaluated(tmp_path / "eval")

    os.killpg(first.pid, signal.SIGKILL)  # its lock stays behind, naming a process that is gone
    first.wait()
    assert records.lock_holder(expdir) is None  # the kernel released its flock ...
    assert json.loads((expdir / ".lock").read_text())["pid"] == first.pid  # ... and its name is still there
    more = "config.runner.total_steps=4,,config.runner.save_step=2,,config.runner.eval_step=1000"
    taken = subprocess.run([sys.executable, str(REPO / "run_downstream.py"),
                            *train_argv("ks", expdir, mini_superb, hubert_tiny, more, "-a")],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)  # fmt: skip
    assert taken.returncode == 0, taken.stderr[-3000:]
    assert f"taking over {expdir / '.lock'}" in (expdir / "run.log").read_text() + taken.stderr
    assert records.lock_holder(expdir) is None and (expdir / ".lock").read_text() == ""  # released at the end


def test_the_leaderboard_does_not_start_a_cell_that_another_process_trains(tmp_path, capsys):
    cell = Cell("hubert_adapter", "houlsby", "ks")
    expdir = cell.expdir(tmp_path)
    expdir.mkdir(parents=True)
    with records.ExperimentLock(expdir):  # held by this live process
        codes = run_grid([cell], tmp_path, Launch(PRESETS["smoke"], {}, None), jobs=1, skip=[])
    assert codes == {} and not (expdir / "cell.json").exists()
    assert f"{cell.name} is being trained by pid {os.getpid()}" in capsys.readouterr().err


def test_a_killed_rank_ends_the_other_in_bounded_time_naming_it_and_a_resume_continues(
    tmp_path, mini_superb, hubert_tiny
):
    expdir = tmp_path / "ddp"
    every_2 = "config.runner.total_steps=100000,,config.runner.save_step=2,,config.runner.eval_step=1000"
    process = start(train_argv("ks", expdir, mini_superb, hubert_tiny, f"{every_2},,config.runner.ddp_timeout=30"),
                    tmp_path, torchrun=2)  # fmt: skip
    wait_for(lambda: (expdir / "states-2.ckpt").is_file() and logged_step(expdir, 3), process)
    victim = json.loads((expdir / ".ddp" / "rank1.json").read_text())["pid"]
    os.kill(victim, signal.SIGKILL)
    killed = time.time()
    output, _ = process.communicate(timeout=120)
    assert time.time() - killed < 60, "the surviving rank waited too long"
    assert process.returncode != 0
    assert "rank 1" in output, output[-3000:]

    last = records.load_state(records.states_checkpoints(expdir)[-1]).step
    resume = start(train_argv("ks", expdir, mini_superb, hubert_tiny, f"config.runner.total_steps={last + 2}", "-a"),
                   tmp_path, torchrun=2)  # fmt: skip
    output, _ = resume.communicate(timeout=300)
    assert resume.returncode == 0, output[-3000:]
    report = records.read_results(expdir)["train"]
    assert report["resumed_from_step"] == last and report["steps"] == last + 2 and report["world_size"] == 2


def test_a_stop_signal_to_torchrun_stops_every_rank_at_the_same_step_and_a_resume_continues(
    tmp_path, mini_superb, hubert_tiny
):
    expdir = tmp_path / "ddp"
    process = start(train_argv("ks", expdir, mini_superb, hubert_tiny, LONG), tmp_path, torchrun=2)
    wait_for(lambda: logged_step(expdir, 3), process)
    os.kill(process.pid, signal.SIGTERM)  # the agent forwards it to both ranks
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0  # torchrun reports its own signal: a job script reads results.json instead
    (saved,) = records.states_checkpoints(expdir)
    step = records.load_state(saved).step
    assert records.read_results(expdir)["train"]["interrupted"] == {"signal": "SIGTERM", "step": step}
    assert "SIGKILL" not in output  # both ranks left within the agent's grace period: none hung in a collective

    resume = start(train_argv("ks", expdir, mini_superb, hubert_tiny, f"config.runner.total_steps={step + 2}", "-a"),
                   tmp_path, torchrun=2)  # fmt: skip
    output, _ = resume.communicate(timeout=300)
    assert resume.returncode == 0, output[-3000:]
    report = records.read_results(expdir)["train"]
    assert report["resumed_from_step"] == step and report["steps"] == step + 2 and "interrupted" not in report


def test_a_stalled_rank_ends_the_other_after_ddp_timeout(tmp_path, mini_superb, hubert_tiny):
    expdir = tmp_path / "ddp"
    stalls = f"{LONG},,config.runner.ddp_timeout=15"
    process = start(train_argv("ks", expdir, mini_superb, hubert_tiny, stalls), tmp_path, torchrun=2)
    wait_for(lambda: logged_step(expdir, 3), process)
    victim = json.loads((expdir / ".ddp" / "rank1.json").read_text())["pid"]
    os.kill(victim, signal.SIGSTOP)  # alive but silent, like a rank stuck in I/O
    stalled = time.time()
    try:
        output, _ = process.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    assert time.time() - stalled < 15 + 30 + 30, "the survivor waited past its timeout and torchrun's 30 s grace"
    assert "stalled past runner.ddp_timeout" in output, output[-3000:]


@pytest.mark.parametrize(("message", "peer"), [
    ("[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:4242", True),
    ("Application timeout caused pair closure", True),  # gloo, when runner.ddp_timeout runs out
    ("DataLoader timed out after 5 seconds", False),
    ("mat1 and mat2 shapes cannot be multiplied (4x8 and 9x2)", False),
])  # fmt: skip
def test_only_what_a_peer_does_counts_as_a_lost_rank(message, peer, tmp_path):
    assert distributed.is_peer_failure(RuntimeError(message), tmp_path) is peer


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 8 MiB (root only), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_really_full_disk_fails_naming_the_file_keeps_the_last_checkpoint_and_resumes(
    tmp_path, small_disk, mini_superb, hubert_tiny
):
    probe = tmp_path / "probe"
    one = "config.runner.total_steps=2,,config.runner.save_step=2,,config.runner.eval_step=1000"
    run(train_argv("ks", probe, mini_superb, hubert_tiny, one))
    size = (probe / "states-2.ckpt").stat().st_size
    # the first checkpoint fits; the second one's temp file (written while the first still exists) does not
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - int(1.5 * size) - 150_000))

    expdir = small_disk / "exp"
    every_2 = "config.runner.total_steps=8,,config.runner.save_step=2,,config.runner.eval_step=1000"
    done = subprocess.run([sys.executable, str(REPO / "run_downstream.py"),
                           *train_argv("ks", expdir, mini_superb, hubert_tiny, every_2)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"cannot write {expdir / 'states-4.ckpt'}: No space left on device" in done.stderr
    assert [p.name for p in records.states_checkpoints(expdir)] == ["states-2.ckpt"]
    assert records.load_state(expdir / "states-2.ckpt").step == 2
    assert not list(expdir.glob(".states-*.tmp"))

    filler.unlink()  # space again
    run(train_argv("ks", expdir, mini_superb, hubert_tiny, every_2, "-a"))
    report = records.read_results(expdir)["train"]
    assert report["resumed_from_step"] == 2 and report["steps"] == 8


def test_a_bad_er_file_is_skipped_like_any_other(tmp_path, mini_superb, hubert_tiny):
    shutil.copytree(mini_superb / "er", tmp_path / "er")
    meta = json.loads((tmp_path / "er" / "meta_data" / "Session1" / "train_meta_data.json").read_text())
    root = tmp_path / "er" / "IEMOCAP_full_release"
    bad = {str(root / item["path"]) for item in meta["meta_data"][1::2]}  # not the first: read while building
    for path in bad:
        corrupt(Path(path), "nan")
    short = "config.runner.total_steps=4,,config.runner.save_step=4,,config.runner.eval_step=1000"
    run(train_argv("er", tmp_path / "exp", tmp_path, hubert_tiny, f"{short},,config.runner.on_bad_data=skip"))
    report = records.read_results(tmp_path / "exp")["train"]
    assert report["steps"] == 4 and report["bad_data"]["skipped_items"] > 0  # trained past them
    assert set(report["bad_data"]["files"]) <= bad


class Buckets(torch.utils.data.Dataset):
    """An ASR-like dataset: item i is a whole bucket of files, read through the tapped soundfile."""

    def __init__(self, root: Path, buckets: list[list[str]]) -> None:
        self.libri_root, self.X = str(root), buckets

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, index: int) -> list[str]:
        import soundfile

        return [str(soundfile.read(os.path.join(self.libri_root, name))[1]) for name in self.X[index]]


def test_a_bad_asr_file_drops_only_itself_from_its_bucket(tmp_path):
    import numpy as np
    import soundfile

    for name in ("a.wav", "b.wav", "c.wav"):
        soundfile.write(tmp_path / name, np.full(1600, 0.1, np.float32), 16000)
    corrupt(tmp_path / "b.wav", "unreadable")
    from effspeech.superb.trainer.audio_reads import tapped_reads

    dataset = GuardedDataset(Buckets(tmp_path, [["a.wav", "b.wav", "c.wav"], ["b.wav"]]), drop_from_bucket)
    with tapped_reads(converts_audio=False):
        salvaged, lost = dataset[0], dataset[1]
    assert isinstance(salvaged, Salvaged) and salvaged.item == ["16000", "16000"]  # a and c
    assert [item.path for item in salvaged.bad] == [str(tmp_path / "b.wav")]
    assert lost.path == str(tmp_path / "b.wav")  # a bucket of only bad files is lost whole
    batch = GuardedCollate(lambda items: items[0])([salvaged])
    skipping = BadDataLog("skip")
    assert list(skipping.batches([batch])) == [(0, ["16000", "16000"])]
    assert skipping.summary()["files"] == {str(tmp_path / "b.wav"): salvaged.bad[0].what}
    with pytest.raises(Exception, match="bad audio .*b.wav"):
        list(BadDataLog("stop").batches([batch]))


def test_a_stop_signal_to_the_leaderboard_stops_its_cells_resumably_and_starts_no_other(tmp_path):
    out = tmp_path / "lb"
    grid = subprocess.Popen([sys.executable, "-m", "effspeech.tools.cli", "leaderboard", "--preset", "smoke",
                             "--upstreams", "hubert_mini_adapter", "--methods", "none,houlsby", "--tasks", "ks",
                             "--steps", "100000", "--out", str(out), "--jobs", "1"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    first, second = (Cell("hubert_mini_adapter", method, "ks").expdir(out) for method in ("none", "houlsby"))
    wait_for(lambda: (progress := records.read_progress(first)) is not None and progress.step >= 3, grid)
    cell_pid = json.loads((first / "cell.json").read_text())["pid"]
    grid.send_signal(signal.SIGTERM)
    output, _ = grid.communicate(timeout=120)
    assert grid.returncode == PREEMPTED, output[-3000:]
    assert "stopped on SIGTERM: 1 running cell(s) saved their step and stopped" in output
    state = json.loads((first / "cell.json").read_text())
    assert state["state"] == "interrupted" and state["returncode"] == PREEMPTED
    assert (
        records.states_checkpoints(first) and records.read_results(first)["train"]["interrupted"]["signal"] == "SIGTERM"
    )
    with pytest.raises(ProcessLookupError):
        os.kill(cell_pid, 0)  # the cell's trainer is gone, not orphaned
    assert not second.exists()  # no further cell started
