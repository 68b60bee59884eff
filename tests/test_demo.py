"""``effspeech demo`` (``make demo``) end to end, with few steps."""

from __future__ import annotations

import json

import pytest

from effspeech.demo import check_upstream, run_demo
from effspeech.synth.cache import COMPLETE, corpus_root


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
    assert "KS test accuracy:" in capsys.readouterr().out


@pytest.mark.slow
def test_adapter_tuned_pretrained_upstream_beats_chance_clearly_on_ks(tmp_path, cached_tiny):
    """The learnability check: the demo's own budget (240 steps of houlsby on hubert_mini) on tiny KS."""
    summary = run_demo("hubert_mini_adapter", "houlsby", steps=240, expdir=tmp_path / "demo", jobs=1)

    assert summary["test_accuracy"] > 2 * summary["chance"]  # 12 classes: chance is 8.3%


def test_a_demo_folder_trained_on_another_upstream_checkpoint_is_not_resumed(tmp_path):
    checkpoint, expdir = tmp_path / "hubert_mini.pt", tmp_path / "demo"
    checkpoint.write_bytes(b"first checkpoint")
    check_upstream(expdir, checkpoint)
    (expdir / "states-240.ckpt").write_bytes(b"trained")
    check_upstream(expdir, checkpoint)  # same upstream: resuming is fine
    checkpoint.write_bytes(b"second checkpoint")
    with pytest.raises(SystemExit, match="was trained on another upstream checkpoint"):
        check_upstream(expdir, checkpoint)
    assert (expdir / "states-240.ckpt").read_bytes() == b"trained"  # nothing saved is lost
