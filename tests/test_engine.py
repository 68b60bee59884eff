"""attach / AdapterSet: freezing, training, state round trips, detach, errors and plugins."""

from __future__ import annotations

import pytest
import torch
import yaml

import effspeech
from effspeech.spec import parse_spec

from .conftest import FAMILIES

ALL_METHODS = (
    "houlsby", "adapterbias", "bitfit", "lora", "prefix", "prompt", "cnn", "dora", "ia3", "parallel", "lnfit", "elp",
)  # fmt: skip


def _train(expert, adapters, wavs, steps: int = 3) -> None:
    optimizer = torch.optim.AdamW(adapters.parameters(), lr=1e-2)
    expert.train()
    for _ in range(steps):
        loss = sum(h.pow(2).mean() for h in expert(wavs)["hidden_states"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    expert.eval()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", ALL_METHODS)
def test_training_changes_only_adapter_tensors_and_detach_restores_everything(load_expert, wavs, family, method):
    expert = load_expert(family)
    flags = {name: p.requires_grad for name, p in expert.named_parameters()}
    frozen = {name: p.detach().clone() for name, p in expert.named_parameters()}
    frozen_by_id = {id(p): (name, p, p.detach().clone()) for name, p in expert.named_parameters()}
    with torch.no_grad():
        reference = expert(wavs)["hidden_states"]

    adapters = effspeech.attach(expert, method)
    assert all(not p.requires_grad for p in expert.model.parameters() if all(p is not q for q in adapters.parameters()))
    initial = {key: value.clone() for key, value in adapters.state_dict().items()}
    _train(expert, adapters, wavs)

    trained = adapters.state_dict()
    assert any(not torch.equal(initial[key], trained[key]) for key in trained), "no adapter tensor moved"
    adapter_ids = {id(p) for p in adapters.parameters()}
    for name, parameter, value in frozen_by_id.values():
        if id(parameter) not in adapter_ids:  # by identity: LoRA moves weights under parametrizations
            assert torch.equal(parameter, value), f"frozen tensor {name} changed"

    adapters.detach()
    assert {name: p.requires_grad for name, p in expert.named_parameters()} == flags
    assert not hasattr(expert, "effspeech_adapters")
    with torch.no_grad():
        restored = expert(wavs)["hidden_states"]
    assert all(torch.equal(a, b) for a, b in zip(reference, restored))
    assert all(torch.equal(p, frozen[name]) for name, p in expert.named_parameters())


def test_detach_after_lora_merge_restores_exact_weights(load_expert, wavs):
    expert = load_expert("hubert")
    with torch.no_grad():
        reference = expert(wavs)["last_hidden_state"]
    adapters = effspeech.attach(expert, "lora")
    _train(expert, adapters, wavs)
    adapters.merge()
    adapters.detach()
    with torch.no_grad():
        assert torch.equal(expert(wavs)["last_hidden_state"], reference)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", ALL_METHODS)
def test_state_dict_round_trip_reproduces_outputs(load_expert, wavs, method, family):
    source = load_expert(family)
    adapters = effspeech.attach(source, method)
    _train(source, adapters, wavs)
    state = adapters.state_dict()
    assert state and all(key.startswith(f"{method}.") for key in state)
    frozen_names = {name for name, _ in source.model.named_parameters()} - {k.split(".", 1)[1] for k in state}
    assert not any(key.split(".", 1)[1] in frozen_names for key in state)  # no frozen weight saved
    with torch.no_grad():
        expected = source(wavs)["hidden_states"]

    target = load_expert(family)
    loaded = effspeech.attach(target, adapters.spec)
    loaded.load_state_dict(state)
    with torch.no_grad():
        got = target(wavs)["hidden_states"]
    assert all(torch.equal(a, b) for a, b in zip(expected, got))


def test_loading_another_method_size_or_architecture_fails_with_the_difference(load_expert):
    houlsby = effspeech.attach(load_expert("hubert"), "houlsby").state_dict()
    with pytest.raises(ValueError, match=r"methods: checkpoint has \['houlsby'\], this model has \['lora'\]"):
        effspeech.attach(load_expert("hubert"), "lora").load_state_dict(houlsby)
    with pytest.raises(ValueError, match=r"checkpoint \(32, 128\) vs model \(16, 128\)"):
        effspeech.attach(load_expert("hubert"), {"houlsby": {"bottleneck": 16}}).load_state_dict(houlsby)
    with pytest.raises(ValueError, match="unexpected keys"):
        effspeech.attach(load_expert("hubert"), {"houlsby": {"layers": [0]}}).load_state_dict(houlsby)
    dora = effspeech.attach(load_expert("hubert"), "dora").state_dict()
    with pytest.raises(ValueError, match=r"A: checkpoint \(8, 128\) vs model \(4, 128\)"):
        effspeech.attach(load_expert("hubert"), {"dora": {"rank": 4}}).load_state_dict(dora)
    with pytest.raises(ValueError, match=r"methods: checkpoint has \['dora'\], this model has \['ia3'\]"):
        effspeech.attach(load_expert("hubert"), "ia3").load_state_dict(dora)


def test_spec_is_fully_resolved_and_yaml_round_trips(load_expert):
    adapters = effspeech.attach(load_expert("hubert"), "houlsby,lora")
    assert adapters.spec["lora"] == {"rank": 8, "alpha": None, "targets": ["q", "k"], "layers": None}
    assert parse_spec(yaml.safe_load(yaml.safe_dump(adapters.spec))) == adapters.spec


@pytest.mark.parametrize(
    "spec, message",
    [
        ("nonsense", "unknown adapter method 'nonsense'; valid names: adapterbias, bitfit, cnn"),
        ({"lora": {"rank": 0}}, "LoraConfig.rank must be a positive number, got 0"),
        ({"houlsby": {"bottleneck": -4}}, "HoulsbyConfig.bottleneck must be a positive number"),
        ({"prefix": {"length": 100000}}, "PrefixConfig.length must be at most 512"),
        ({"lora": {"targets": ["q", "w"]}}, r"LoraConfig.targets \['q', 'w'\] must be a non-empty subset"),
        ({"lora": {"rnk": 4}}, r"unknown hyperparameter\(s\) \['rnk'\] for adapter 'lora'"),
        ({"houlsby": {"layers": [7]}}, r"layer indices \[7\] out of range for an upstream with 2 layers"),
        ("none", "empty adapter spec"),
    ],
)
def test_bad_specs_are_refused_and_leave_the_model_untouched(load_expert, spec, message):
    expert = load_expert("hubert")
    flags = [p.requires_grad for p in expert.parameters()]
    with pytest.raises((KeyError, ValueError), match=message):
        effspeech.attach(expert, spec)
    if "out of range" not in message:  # config errors are found before the model is touched
        assert [p.requires_grad for p in expert.parameters()] == flags
        assert not hasattr(expert, "effspeech_adapters")


def test_attaching_twice_is_refused(load_expert):
    expert = load_expert("hubert")
    effspeech.attach(expert, "houlsby")
    with pytest.raises(ValueError, match="already has adapters attached"):
        effspeech.attach(expert, "lora")


def test_non_upstream_models_are_refused():
    with pytest.raises(TypeError, match="cannot attach adapters to Linear"):
        effspeech.attach(torch.nn.Linear(3, 3), "houlsby")


def test_inner_network_works_as_well_as_the_expert(load_expert, wavs):
    expert = load_expert("wav2vec2")
    adapters = effspeech.attach(expert.model, "houlsby")
    assert hasattr(expert.model, "effspeech_adapters")
    assert adapters.num_trainable() > 0
    _train(expert, adapters, wavs, steps=1)


def test_registered_method_from_a_plugin_entry_point_attaches_by_name(load_expert, wavs):
    assert "ffn_scale" in effspeech.available_adapters()
    expert = load_expert("hubert")
    adapters = effspeech.attach(expert, {"ffn_scale": {"layers": [1]}})
    assert adapters.num_trainable() == expert.model.encoder.layers[1].fc2.out_features
    with torch.no_grad():
        scale = expert.effspeech_adapters["ffn_scale"].scales["1"]
        before = expert(wavs)["last_hidden_state"]
        scale.mul_(3.0)
        after = expert(wavs)["last_hidden_state"]
    assert (before - after).abs().max() > 1e-3


def test_register_adapter_refuses_a_second_class_under_a_taken_name():
    with pytest.raises(ValueError, match="already registered"):

        @effspeech.register_adapter("houlsby")
        class Impostor(effspeech.AdapterMethod):
            pass


def test_two_methods_that_would_train_one_tensor_are_refused_naming_it(load_expert):
    expert = load_expert("hubert")
    flags = [p.requires_grad for p in expert.parameters()]
    with pytest.raises(ValueError, match=r"bitfit and lnfit both train encoder\.layers\.0\.self_attn_layer_norm\.bias"):
        effspeech.attach(expert, ["bitfit", "lnfit"])
    assert [p.requires_grad for p in expert.parameters()] == flags and not hasattr(expert, "effspeech_adapters")


def test_a_state_is_not_loaded_into_merged_tensors(load_expert):
    expert = load_expert("hubert")
    adapters = effspeech.attach(expert, "dora")
    state = adapters.state_dict()
    adapters.merge()
    with pytest.raises(ValueError, match=r"dora merged into the upstream: unmerge\(\) before loading a state"):
        adapters.load_state_dict(state)
    adapters.unmerge()
    adapters.load_state_dict(state)
