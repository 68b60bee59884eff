"""The package installs from its wheel and trains from anywhere: built, installed into a fresh virtual
environment without the checkout on the path, and run from an empty directory."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ONE_STEP = ",,".join(
    [
        "config.runner.total_steps=2",
        "config.runner.eval_step=2",
        "config.runner.save_step=2",
        "config.downstream_expert.datarc.batch_size=4",
        "config.downstream_expert.datarc.num_workers=0",
    ]
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed; its dependencies come from this one's
    site-packages through a .pth line (no download), which does not make the checkout importable."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy: setuptools leaves build/ in the tree it builds, stale files and all
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".*", "build", "result", "*.egg-info", "__pycache__"))
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root)]
    subprocess.run([*build, str(source)], check=True, capture_output=True, cwd=root)
    (wheel,) = root.glob("effspeech-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    target = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(target, "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)]
    subprocess.run(install, check=True, capture_output=True)
    return venv


def run_in(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run(args, cwd=cwd, env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_the_wheel_trains_and_evaluates_a_ks_cell_from_an_empty_directory(
    installed, tmp_path, mini_superb, hubert_tiny
):
    python = str(installed / "bin" / "python")
    where = run_in(installed, tmp_path, python, "-c", "import effspeech, downstream; print(effspeech.__file__)")
    assert where.stdout.startswith(str(installed)), where.stdout  # the wheel's copy, not the checkout
    expdir = tmp_path / "exp"
    train = ["-m", "train", "-u", "hubert_adapter", "-k", hubert_tiny, "-d", "ks", "-p", str(expdir)]
    train += ["--adapter", "houlsby", "--data-root", str(mini_superb), "-o", ONE_STEP]
    run_in(installed, tmp_path, python, "-m", "run_downstream", *train)
    run_in(installed, tmp_path, python, "-m", "run_downstream", "-m", "evaluate", "-e", str(expdir / "states-2.ckpt"))
    results = json.loads((expdir / "results.json").read_text())
    assert results["train"]["steps"] == 2 and "acc" in results["evaluate"]["metrics"]["test"]
    report = run_in(installed, tmp_path, str(installed / "bin" / "effspeech"), "params", "-k", hubert_tiny)
    assert report.stdout.strip().splitlines()[-1].startswith("trainable=0 ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]  # nothing written outside the experiment
