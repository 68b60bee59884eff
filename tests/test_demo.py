"""``effspeech demo`` (``make demo``) end to end, with few steps: one leaderboard cell on Mini-SUPERB tiny
(standing in for small, whose KS the real demo generates)."""

from __future__ import annotations

import json

import pytest
import torch

from effspeech.errors import ConfigError
from effspeech.superb import records
from effspeech.superb.upstream import offline_checkpoint
from effspeech.tools.demo import best_efficient, run_demo
from effspeech.tools.leaderboard import table
from effspeech.tools.synth.cache import COMPLETE, corpus_root


@pytest.fixture
def cached_tiny(tmp_path, monkeypatch, mini_superb):
    """The session's tiny corpus stands in for the cached one the demo looks for."""
    monkeypatch.setenv("EFFSPEECH_CACHE", str(tmp_path / "cache"))
    corpus_root("tiny", 0).parent.mkdir(parents=True)
    for size in ("tiny", "small"):
        corpus_root(size, 0).symlink_to(mini_superb)
    (mini_superb / COMPLETE).write_text("ok\n")


def _score(value, std=None, n=1):
    return {"metric": "acc", "value": value, "std": std, "n": n, "lr": None, "status": "done"}


def _rows(digest, ks):
    return [
        {"upstream": "hubert_adapter", "method": method, "upstream_sha256": [digest], "scores": {"ks": _score(*v)}}
        for method, v in ks.items()
    ]


def test_demo_trains_evaluates_and_reports_the_trainable_share(tmp_path, cached_tiny, capsys):
    summary = run_demo("hubert_adapter", "houlsby", steps=4, expdir=tmp_path / "demo", jobs=1, corpus="tiny")

    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert summary["test_accuracy"] == results["evaluate"]["metrics"]["test"]["acc"]
    assert summary["trainable_upstream"] == results["trainable_params"]["upstream"] > 0
    assert 0 < summary["trainable_share"] < 0.2
    assert results["upstream_ckpt"].endswith("hubert_tiny-seed0.pt")  # the embedded default, no download
    out = capsys.readouterr()
    assert "KS test accuracy:" in out.out
    assert f"on {summary['test_clips']} clips" in out.out and summary["test_clips"] == 56  # tiny's test tree
    assert "shipped table" not in out.out  # it was measured on small, not on tiny
    assert "[Runner]" not in out.out + out.err  # the trainer's own output went to the cell's log
    assert "[Runner] - Save the checkpoint" in (tmp_path / "demo" / "cell.log").read_text()


@pytest.mark.slow
def test_adapter_tuned_pretrained_upstream_beats_chance_clearly_on_ks(tmp_path, cached_tiny):
    """The learnability check: the demo's own budget (240 steps of houlsby on hubert_mini) on tiny KS."""
    summary = run_demo("hubert_mini_adapter", "houlsby", steps=240, expdir=tmp_path / "demo", jobs=1, corpus="tiny")

    assert summary["test_accuracy"] > 2 * summary["chance"]  # 12 classes: chance is 8.3%


def test_a_demo_trained_on_another_upstream_checkpoint_is_refused_and_kept(tmp_path, cached_tiny, capsys):
    expdir = tmp_path / "demo"
    run_demo("hubert_adapter", "houlsby", steps=2, expdir=expdir, jobs=1, corpus="tiny")
    first = capsys.readouterr().out.splitlines()[-3]
    assert run_demo(
        "hubert_adapter", "houlsby", steps=2, expdir=expdir, jobs=1, corpus="tiny"
    )  # finished: reported again
    assert capsys.readouterr().out.splitlines()[-3] == first

    from effspeech.superb.upstream import offline_checkpoint

    checkpoint = offline_checkpoint("hubert_adapter")  # the embedded one, rebuilt as another network
    state = torch.load(checkpoint, weights_only=False)
    state["model_weight"] = {name: value + 1 for name, value in state["model_weight"].items()}
    torch.save(state, checkpoint)
    saved = (expdir / "states-2.ckpt").read_bytes()
    with pytest.raises(ConfigError, match="was trained with other settings or on another upstream checkpoint"):
        run_demo("hubert_adapter", "houlsby", steps=2, expdir=expdir, jobs=1, corpus="tiny")
    assert (expdir / "states-2.ckpt").read_bytes() == saved  # nothing saved is lost


def test_a_demo_folder_from_before_the_leaderboard_cells_is_checked_against_its_recorded_upstream(
    tmp_path, cached_tiny
):
    expdir = tmp_path / "demo"
    expdir.mkdir()
    (expdir / "states-240.ckpt").write_bytes(b"trained on an older checkpoint")
    (expdir / "upstream.sha256").write_text("0" * 64 + "\n")  # what the old demo recorded
    with pytest.raises(ConfigError, match="was trained with other settings or on another upstream checkpoint"):
        run_demo("hubert_adapter", "houlsby", steps=2, expdir=expdir, jobs=1, corpus="tiny")
    assert (expdir / "states-240.ckpt").read_bytes() == b"trained on an older checkpoint"


def test_the_best_efficient_method_is_chosen_from_the_table_leaving_out_the_references():
    rows = _rows("d", {"none": (0.4,), "finetune": (0.9,), "lora": (0.6,), "ia3": (0.7,), "elp": (None,)})
    assert best_efficient(rows, "ks") == "ia3"
    assert best_efficient(rows, "ic") is None  # no such column: the caller falls back


def test_the_demo_shows_the_shipped_table_of_its_checkpoint_and_trains_its_best_method(
    tmp_path, cached_tiny, monkeypatch, capsys
):
    digest = records.file_digest(offline_checkpoint("hubert_adapter"))
    shipped = tmp_path / "shipped.json"
    rows = _rows(digest, {"none": (0.44, 0.012, 3), "finetune": (0.80, 0.02, 3), "bitfit": (0.5, 0.01, 3)})
    rows += _rows("another checkpoint", {"lora": (0.99, 0.0, 3)})  # measured on another checkpoint: ignored
    shipped.write_text(json.dumps(rows))
    monkeypatch.setattr(table, "SHIPPED", shipped)

    summary = run_demo("hubert_adapter", steps=2, expdir=tmp_path / "demo", jobs=1)

    assert summary["adapter"] == "bitfit"
    out = capsys.readouterr().out
    assert "2 steps of bitfit on hubert_adapter" in out
    lines = out[out.index("the shipped table") :].splitlines()
    assert lines[1].split() == ["none", "44.0", "±", "1.2%", "over", "3", "seed(s)"]
    assert lines[2].split()[:2] == ["bitfit", "50.0"] and lines[3].split()[:2] == ["finetune", "80.0"]
    assert "lora" not in out
