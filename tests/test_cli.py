"""The effspeech command line and the S3PRL-style upstream entries."""

from __future__ import annotations

import subprocess
import sys

import pytest

import effspeech
import upstream_adapters
from effspeech.superb.upstream import ENTRIES, load_upstream, pad_short_waves
from effspeech.tools.cli import main


def test_make_checkpoint_writes_what_s3prl_loads(tmp_path):
    import s3prl.hub

    out = tmp_path / "w.pt"
    assert main(["make-checkpoint", "--arch", "wavlm_tiny", "--seed", "3", "--out", str(out)]) == 0
    expert = s3prl.hub.wavlm_local(ckpt=str(out))
    assert len(expert.model.encoder.layers) == 2


def test_params_report_ends_with_the_summary_line(tiny_checkpoints, capsys):
    main(["params", "-u", "hubert_adapter", "-k", tiny_checkpoints["hubert"], "--adapter", "houlsby,bitfit"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["method", "module", "params"]
    assert any(line.startswith("houlsby") and "ffn.0.down" in line for line in lines)
    expert, adapters = load_upstream("hubert_adapter", tiny_checkpoints["hubert"], "houlsby,bitfit")
    trainable = adapters.num_trainable()
    total = sum(p.numel() for p in expert.parameters())
    assert lines[-1] == f"trainable={trainable} total={total} percent={100 * trainable / total:.4f}"


def test_params_runs_as_a_console_command(tiny_checkpoints):
    result = subprocess.run(
        [sys.executable, "-m", "effspeech.tools.cli", "params", "-k", tiny_checkpoints["hubert"], "--adapter", "lora"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1].startswith("trainable=8192 ")  # 2 layers x (q, k) x 2 x 128 x 8


def local_checkpoint(entry: str, tiny_checkpoints: dict, transformers_checkpoints: dict):
    """A tiny random checkpoint the entry loads: an S3PRL file, or a transformers directory."""
    family = ENTRIES[entry].family
    return transformers_checkpoints[family] if ENTRIES[entry].transformers else tiny_checkpoints[family]


@pytest.mark.parametrize("entry", sorted(upstream_adapters.ENTRIES))
def test_upstream_entries_load_a_local_checkpoint_with_adapters(tiny_checkpoints, transformers_checkpoints, entry):
    ckpt = local_checkpoint(entry, tiny_checkpoints, transformers_checkpoints)
    expert = upstream_adapters.ENTRIES[entry](ckpt=ckpt, adapter="lora")
    assert effspeech.adapters_of(expert).spec["lora"]["rank"] == 8
    assert effspeech.adapters_of(upstream_adapters.ENTRIES[entry](ckpt=ckpt)) is None


def test_default_checkpoint_offline_fails_at_once_naming_the_url(tmp_path, monkeypatch):
    from s3prl.util import download

    monkeypatch.setattr(download, "_download_dir", tmp_path)  # an empty cache
    monkeypatch.setattr(download, "_download", lambda *a, **k: (_ for _ in ()).throw(OSError("no network")))
    with pytest.raises(RuntimeError, match=r"hubert_base_ls960\.pt .*pass a local checkpoint with -k PATH"):
        upstream_adapters.hubert_adapter()


def test_missing_local_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="upstream checkpoint not found: .*nope.pt"):
        upstream_adapters.wavlm_adapter(ckpt=str(tmp_path / "nope.pt"))


@pytest.mark.parametrize("entry", sorted(upstream_adapters.ENTRIES))
@pytest.mark.parametrize("adapter", [None, "prefix", "prompt", "houlsby"])
def test_short_silent_and_mixed_length_batches_give_hidden_states_of_the_right_length(
    tiny_checkpoints, transformers_checkpoints, entry, adapter
):
    import torch

    ckpt = local_checkpoint(entry, tiny_checkpoints, transformers_checkpoints)
    if (entry, adapter) == ("hf_wavlm_adapter", "prefix"):  # refused (docs/adapters.md)
        with pytest.raises(TypeError, match="prefix on transformers' WavLM"):
            load_upstream(entry, ckpt, adapter)
        return
    expert, _ = load_upstream(entry, ckpt, adapter)
    expert.eval()
    with torch.no_grad():
        for lengths, frames in [([120], 1), ([0, 399], 1), ([300, 16000], 49), ([16000 * 20], 999)]:
            states = expert(pad_short_waves([torch.zeros(n) for n in lengths]))["hidden_states"]
            assert all(h.shape[:2] == (len(lengths), frames) for h in states)
            assert all(torch.isfinite(h).all() for h in states)
