"""transformers checkpoints as upstreams (``hf_<family>_adapter``): a save_pretrained directory loads
offline and gives S3PRL's featurizer what S3PRL's experts give it; an uncached hub id offline fails at
once naming it; the trainer trains, evaluates and resumes on one exactly as on an S3PRL checkpoint."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch

import effspeech.superb  # noqa: F401  (compatibility shims before s3prl)
from effspeech.errors import DownloadError
from effspeech.superb.trainer.main import run
from effspeech.superb.transformers_upstream import ARCHS
from effspeech.superb.upstream import load_upstream
from effspeech.tools.cli import main

from .test_trainer_e2e import fixed_batch, load, overrides  # noqa: F401  (a fixture)


@pytest.fixture
def checkpoints(transformers_checkpoints) -> dict[str, Path]:
    return transformers_checkpoints


@pytest.mark.parametrize("family", sorted({family for family, _ in ARCHS.values()}))
def test_a_directory_loads_offline_into_the_featurizer_s_interface(checkpoints, family, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a local directory never needs the network
    expert, adapters = load_upstream(f"hf_{family}_adapter", checkpoints[family], "houlsby")
    expert.eval()
    waves = [torch.randn(16000), torch.randn(12800)]
    with torch.no_grad():
        states = expert(waves)["hidden_states"]
    assert len(states) == len(expert.model.encoder.layers) + 1
    assert expert.get_downsample_rates("hidden_states") == 320
    assert states[0].shape[:2] == (2, 16000 // 320 - 1)  # transformers' extractor: (16000 - 400) // 320 + 1
    assert adapters.num_trainable() > 0 and adapters.anatomy.scheme == "transformers"
    if expert.normalize:  # data2vec's preprocessor config normalises each wave: its scale does not matter
        with torch.no_grad():
            scaled = expert([waves[0] * 3])["hidden_states"]
            alone = expert([waves[0]])["hidden_states"]
        assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(alone, scaled))


def test_an_uncached_hub_id_offline_fails_at_once_naming_it(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    started = time.monotonic()
    with pytest.raises(DownloadError, match="'facebook/hubert-base-ls960'.*pass a local save_pretrained directory"):
        load_upstream("hf_hubert_adapter", None, "lora")
    assert time.monotonic() - started < 30


@pytest.mark.slow
@pytest.mark.usefixtures("fixed_batch")
def test_trainer_trains_evaluates_and_resumes_a_transformers_upstream(tmp_path, mini_superb, checkpoints):
    import transformers

    directory = checkpoints["hubert"]

    def argv(expdir: Path) -> list[str]:
        return ["-m", "train", "-u", "hf_hubert_adapter", "-k", str(directory), "-d", "ks", "-p", str(expdir),
                "--adapter", "lora", "--data-root", str(mini_superb), "--device", "cpu",
                "-o", overrides("ks") + ",,config.adapter.lora.lr=3.0e-3"]  # fmt: skip

    expdir = tmp_path / "exp"
    runner = run(argv(expdir))
    fresh = dict(transformers.HubertModel.from_pretrained(directory).named_parameters())
    assert all(torch.equal(runner.adapters.anatomy.parameters[name], fresh[name]) for name in fresh)
    state = load(expdir / "states-8.ckpt")
    assert "Upstream" not in state and set(state["Adapter"]["state"]) == {
        k for k, _ in runner.adapters.named_parameters()
    }

    # exported with one command, PEFT loads it onto the transformers model and gives the trained states
    peft = pytest.importorskip("peft")
    assert main(["export-peft", "-e", str(expdir), "-o", str(tmp_path / "peft")]) == 0
    theirs = peft.PeftModel.from_pretrained(transformers.HubertModel.from_pretrained(directory), str(tmp_path / "peft"))
    ours = runner.adapters.anatomy.network.eval()
    wave = torch.randn(1, 16000)
    with torch.no_grad():
        expected = ours(wave, output_hidden_states=True).hidden_states
        exported = theirs.eval()(wave, output_hidden_states=True).hidden_states
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(expected, exported))

    run(["-m", "evaluate", "-e", str(expdir / "states-8.ckpt"), "--device", "cpu"])
    assert json.loads((expdir / "results.json").read_text())["evaluate"]["split"] == "test"

    resumed = tmp_path / "resumed"  # from the middle: ends where the uninterrupted run ended
    resumed.mkdir()
    shutil.copy(expdir / "states-4.ckpt", resumed)
    run(["-m", "train", "-e", str(resumed / "states-4.ckpt"), "--device", "cpu", "-o", "config.runner.eval_step=1000"])
    again = load(resumed / "states-8.ckpt")
    assert all(torch.equal(v, again["Adapter"]["state"][k]) for k, v in state["Adapter"]["state"].items())


@pytest.mark.parametrize("family", ["hubert", "wav2vec2", "wavlm"])
def test_conversion_both_ways_keeps_every_hidden_state_and_the_adapter_state(family, tiny_checkpoints, tmp_path):
    import transformers

    source = tiny_checkpoints[family]
    assert main(["convert", "--to", "hf", source, str(tmp_path / "hf")]) == 0
    assert main(["convert", "--to", "s3prl", str(tmp_path / "hf"), str(tmp_path / "back.pt")]) == 0
    s3prl_expert, adapters = load_upstream(f"{family}_adapter", source, "lora")
    converted, moved = load_upstream(f"hf_{family}_adapter", tmp_path / "hf", "lora")
    back, _ = load_upstream(f"{family}_adapter", tmp_path / "back.pt")
    random_init = transformers.AutoModel.from_config(transformers.AutoConfig.from_pretrained(tmp_path / "hf")).eval()
    waves = [torch.randn(16000), torch.randn(16000)]  # equal lengths: padding is each format's own business
    with torch.no_grad():
        for expert in (s3prl_expert, converted, back):
            expert.eval()
        reference = back(waves)["hidden_states"]
        for other in (s3prl_expert(waves)["hidden_states"], converted(waves)["hidden_states"]):
            assert len(other) == len(reference)
            assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(reference, other))
        unconverted = random_init(torch.stack(waves), output_hidden_states=True).hidden_states[-1]
        assert not torch.allclose(unconverted, reference[-1], atol=1e-2)  # the weights did come across

        # an adapter trained on one format loads on the other: its keys are by layer and role
        for parameter in adapters.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
        moved.load_state_dict(adapters.state_dict())
        assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(s3prl_expert(waves)["hidden_states"],
                                                                     converted(waves)["hidden_states"]))  # fmt: skip
