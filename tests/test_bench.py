"""``effspeech bench`` end to end on a tiny random HuBERT (no timings asserted: CI machines are noisy)."""

from __future__ import annotations

import json

import pytest
import torch

import effspeech
from effspeech.tools.bench.cli import upstream_entry
from effspeech.tools.bench.setups import FINETUNE_CNN_FROZEN, PEFT_LORA, expand_methods, prepare
from effspeech.tools.cli import main

REQUIRED = ("method", "trainable_params", "step_s", "forward_s", "peak_mem_bytes", "ckpt_bytes", "device")


@pytest.fixture(scope="module")
def rows(tiny_checkpoints, tmp_path_factory) -> dict[str, dict]:
    tiny_ckpt = tiny_checkpoints["hubert"]
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    argv = ["bench", "-u", "hubert_adapter", "--arch", "hubert_tiny", "--ckpt", tiny_ckpt, "--json", str(out)]
    argv += ["--methods", "none,finetune,houlsby", "--steps", "1", "--warmup", "1", "--rounds", "1"]
    assert main(argv + ["--infer-reps", "1", "--threads", "1"]) == 0
    return {row["method"]: row for row in json.loads(out.read_text())}


def test_rows_have_the_required_keys_and_sane_values(rows):
    assert set(rows) == {"none", "finetune", FINETUNE_CNN_FROZEN, "houlsby"}
    for row in rows.values():
        assert all(key in row for key in REQUIRED), row
        assert row["device"] == "cpu"
        assert row["step_s"] > 0 and row["forward_s"] > 0
        assert row["peak_mem_bytes"] > 0 and row["ckpt_bytes"] > 0


def test_trainable_counts_match_the_engine(rows, load_expert):
    expert = load_expert("hubert")
    everything = sum(parameter.numel() for parameter in expert.model.parameters())
    extractor = sum(parameter.numel() for parameter in expert.model.feature_extractor.parameters())
    assert rows["houlsby"]["trainable_params"] == effspeech.attach(expert, "houlsby").num_trainable()
    assert rows["none"]["trainable_params"] == 0 < rows["finetune"]["trainable_params"] == everything
    assert rows[FINETUNE_CNN_FROZEN]["trainable_params"] == everything - extractor
    assert rows["houlsby"]["trainable_with_grad"] == rows["houlsby"]["trainable_params"]


def test_adapter_checkpoint_is_small_and_its_update_reaches_the_output(rows):
    assert rows["houlsby"]["ckpt_bytes"] < rows["finetune"]["ckpt_bytes"]
    assert rows["houlsby"]["ckpt_over_finetune"] < 0.2
    assert rows["houlsby"]["output_delta"] > 0
    assert "infer_overhead" in rows["houlsby"]


def test_upstream_names_map_to_the_arch_family():
    assert upstream_entry("hubert_adapter", "hubert_base") == "hubert_adapter"
    assert upstream_entry(None, "wavlm_tiny") == "wavlm_adapter"
    assert upstream_entry(None, "hf_wavlm_tiny") == "hf_wavlm_adapter"
    with pytest.raises(ValueError, match="wav2vec2"):
        upstream_entry("wav2vec2_adapter", "hubert_tiny")


def test_method_list_expands_and_refuses_unknown_names():
    assert expand_methods(["finetune", "houlsby", "finetune"]) == ["finetune", FINETUNE_CNN_FROZEN, "houlsby"]
    with pytest.raises(ValueError, match="unknown bench method"):
        expand_methods(["lorra"])


def test_peft_lora_anchor_changes_nothing_in_s3prl_attention(load_expert, wavs):
    """S3PRL passes q_proj.weight straight to F.multi_head_attention_forward: PEFT's wrapped modules never run."""
    pytest.importorskip("peft")
    expert = load_expert("hubert")
    setup = prepare(expert, PEFT_LORA)
    assert sum(parameter.numel() for parameter in setup.trainable) > 0
    with torch.no_grad():
        before = expert(wavs)["hidden_states"][-1]
        for parameter in setup.trainable:  # lora_B non-zero: the update would now be B A
            parameter.add_(torch.randn_like(parameter))
        assert torch.equal(before, expert(wavs)["hidden_states"][-1])
    assert not expert(wavs)["hidden_states"][-1].requires_grad  # no graph leads back to lora_A/lora_B
