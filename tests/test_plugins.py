"""A method registered by another package through the ``effspeech.adapters`` entry point is a method like
the built-ins: the leaderboard grid has a row of cells for it and the benchmark measures it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN = '''
from dataclasses import dataclass

import torch
from torch import nn

from effspeech import AdapterMethod, MethodConfig


@dataclass
class GainConfig(MethodConfig):
    pass


class Gain(AdapterMethod):
    """One learned gain on the last layer's FFN output."""

    Config = GainConfig

    def attach(self, anatomy, injector):
        holder = nn.Module()
        holder.gain = nn.Parameter(torch.ones(1))
        injector.forward_hook(anatomy.layers[-1].fc2, lambda _m, _a, out: out * holder.gain)
        return holder
'''


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    """An environment in which an installed distribution ``gain-plugin`` registers the method ``gain``."""
    root = tmp_path_factory.mktemp("plugin")
    (root / "gain_plugin.py").write_text(PLUGIN)
    info = root / "gain_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gain-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[effspeech.adapters]\ngain = gain_plugin:Gain\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(REPO)]), "OMP_NUM_THREADS": "1"}


def effspeech(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "effspeech.tools.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_a_plugin_method_is_a_row_of_the_grid(plugin_env, tmp_path, hubert_tiny):
    done = effspeech(
        plugin_env, "leaderboard", "--preset", "smoke", "--upstreams", "hubert_adapter", "--tasks", "ks",
        "--out", str(tmp_path), "--ckpt", f"hubert_adapter={hubert_tiny}", "--data-root", str(tmp_path), "--dry-run",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    methods = [line.split(" --adapter ")[1].split()[0] for line in lines if " --adapter " in line]
    assert "gain" in methods and "houlsby" in methods  # every registered method by default, plugins too
    assert any("/hubert_adapter/gain/ks " in line for line in lines)


def test_a_plugin_method_is_a_row_of_the_benchmark(plugin_env, tmp_path, hubert_tiny):
    code = "from effspeech.superb.methods import all_methods; print(','.join(all_methods()))"
    listed = subprocess.run([sys.executable, "-c", code], env=plugin_env, capture_output=True, text=True)
    assert "gain" in listed.stdout.strip().split(",")  # the benchmark's default method list

    out = tmp_path / "bench.json"
    done = effspeech(
        plugin_env, "bench", "-u", "hubert_adapter", "--arch", "hubert_tiny", "--ckpt", hubert_tiny,
        "--methods", "gain", "--steps", "1", "--rounds", "1", "--infer-reps", "1", "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = json.loads(out.read_text())
    assert row["method"] == "gain" and row["trainable_params"] == 1 and row["output_delta"] > 0
