"""``effspeech demo`` (``make demo``) end to end, with few steps: one leaderboard cell on Mini-SUPERB tiny."""

from __future__ import annotations

import json

import pytest
import torch

from effspeech.errors import ConfigError
from effspeech.tools.demo import run_demo
from effspeech.tools.synth.cache import COMPLETE, corpus_root


@pytest.fixture
def cached_tiny(tmp_path, monkeypatch, mini_superb):
    """The session's tiny corpus stands in for the cached one the demo looks for."""
    monkeypatch.setenv("EFFSPEECH_CACHE", str(tmp_path / "cache"))
    root = corpus_root("tiny", 0)
    root.parent.mkdir(parents=True)
    root.symlink_to(mini_superb)
    (mini_superb / COMPLETE).write_text("ok\n")


def test_demo_trains_evaluates_and_reports_the_trainable_share(tmp_path, cached_tiny, capsys):
    summary = run_demo("hubert_adapter", "houlsby", steps=4, expdir=tmp_path / "demo", jobs=1)

    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert summary["test_accuracy"] == results["evaluate"]["metrics"]["test"]["acc"]
    assert summary["trainable_upstream"] == results["trainable_params"]["upstream"] > 0
    assert 0 < summary["trainable_share"] < 0.2
    assert results["upstream_ckpt"].endswith("hubert_tiny-seed0.pt")  # the embedded default, no download
    out = capsys.readouterr()
    assert "KS test accuracy:" in out.out
    assert "[Runner]" not in out.out + out.err  # the trainer's own output went to the cell's log
    assert "[Runner] - Save the checkpoint" in (tmp_path / "demo" / "cell.log").read_text()


@pytest.mark.slow
def test_adapter_tuned_pretrained_upstream_beats_chance_clearly_on_ks(tmp_path, cached_tiny):
    """The learnability check: the demo's own budget (240 steps of houlsby on hubert_mini) on tiny KS."""
    summary = run_demo("hubert_mini_adapter", "houlsby", steps=240, expdir=tmp_path / "demo", jobs=1)

    assert summary["test_accuracy"] > 2 * summary["chance"]  # 12 classes: chance is 8.3%


def test_a_demo_trained_on_another_upstream_checkpoint_is_refused_and_kept(tmp_path, cached_tiny, capsys):
    expdir = tmp_path / "demo"
    run_demo("hubert_adapter", "houlsby", steps=2, expdir=expdir, jobs=1)
    first = capsys.readouterr().out.splitlines()[-3]
    assert run_demo("hubert_adapter", "houlsby", steps=2, expdir=expdir, jobs=1)  # finished: reported again
    assert capsys.readouterr().out.splitlines()[-3] == first

    from effspeech.superb.upstream import offline_checkpoint

    checkpoint = offline_checkpoint("hubert_adapter")  # the embedded one, rebuilt as another network
    state = torch.load(checkpoint, weights_only=False)
    state["model_weight"] = {name: value + 1 for name, value in state["model_weight"].items()}
    torch.save(state, checkpoint)
    saved = (expdir / "states-2.ckpt").read_bytes()
    with pytest.raises(ConfigError, match="was trained with other settings or on another upstream checkpoint"):
        run_demo("hubert_adapter", "houlsby", steps=2, expdir=expdir, jobs=1)
    assert (expdir / "states-2.ckpt").read_bytes() == saved  # nothing saved is lost


def test_a_demo_folder_from_before_the_leaderboard_cells_is_checked_against_its_recorded_upstream(
    tmp_path, cached_tiny
):
    expdir = tmp_path / "demo"
    expdir.mkdir()
    (expdir / "states-240.ckpt").write_bytes(b"trained on an older checkpoint")
    (expdir / "upstream.sha256").write_text("0" * 64 + "\n")  # what the old demo recorded
    with pytest.raises(ConfigError, match="was trained with other settings or on another upstream checkpoint"):
        run_demo("hubert_adapter", "houlsby", steps=2, expdir=expdir, jobs=1)
    assert (expdir / "states-240.ckpt").read_bytes() == b"trained on an older checkpoint"
