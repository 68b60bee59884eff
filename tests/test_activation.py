"""``AdapterSet.activate``: methods switched off and on without adding or removing a hook. Off, the upstream
is exactly the bare one; on again, exactly the adapted one; a subset acts as if attached alone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import effspeech
from effspeech.errors import ConfigError
from effspeech.injector import Injector

from .conftest import FAMILIES
from .test_methods import ALL


def hidden(expert, wavs) -> list[torch.Tensor]:
    with torch.no_grad():
        return expert(wavs)["hidden_states"]


def perturb(adapters) -> None:
    """Trained-looking tensors: zero-initialised methods would otherwise be the identity anyway."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in adapters.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", ALL)
def test_an_inactive_method_leaves_the_bare_upstream_and_comes_back_exactly(load_expert, wavs, family, method):
    expert = load_expert(family).requires_grad_(False)  # frozen, as attach leaves it: that picks the kernels
    bare = hidden(expert, wavs)
    adapters = effspeech.attach(expert, method)
    perturb(adapters)
    adapted = hidden(expert, wavs)
    state = {key: value.clone() for key, value in adapters.state_dict().items()}
    with adapters.disabled():
        assert adapters.active == []
        assert same(hidden(expert, wavs), bare)
    assert adapters.active == [method]
    assert same(hidden(expert, wavs), adapted)
    assert all(torch.equal(value, state[key]) for key, value in adapters.state_dict().items())
    adapters.activate([])
    adapters.detach()  # detaching an inactive method restores as well
    assert same(hidden(expert, wavs), bare)


@pytest.mark.parametrize(("spec", "alone"), [(["lora", "prompt"], "prompt"), (["elp", "prompt"], "elp"),
                                             (["prompt", "elp"], "prompt"), (["bitfit", "houlsby"], "bitfit"),
                                             (["ia3", "cnn", "parallel"], "cnn")])  # fmt: skip
def test_an_active_subset_acts_as_if_it_were_attached_alone(load_expert, wavs, spec, alone):
    expert = load_expert("hubert").requires_grad_(False)
    adapters = effspeech.attach(expert, spec)
    perturb(adapters)
    own = {key: value.clone() for key, value in adapters.state_dict().items() if key.startswith(f"{alone}.")}
    adapters.activate([alone])
    subset = hidden(expert, wavs)
    adapters.activate()
    adapters.detach()

    single = effspeech.attach(expert, alone)
    single.load_state_dict(own)
    assert same(hidden(expert, wavs), subset)


def test_switching_refuses_what_would_lose_tensors(load_expert):
    expert = load_expert("hubert")
    adapters = effspeech.attach(expert, ["lora", "bitfit"])
    with pytest.raises(ConfigError, match="cannot activate houlsby: attached are lora, bitfit"):
        adapters.activate(["houlsby"])
    adapters.activate(["lora"])
    with pytest.raises(ConfigError, match="bitfit inactive: activate\\(\\) it before saving its state"):
        adapters.state_dict()
    with pytest.raises(ConfigError, match="bitfit inactive: activate\\(\\) it before loading a state"):
        adapters.load_state_dict({"bitfit.x": torch.zeros(1)}, partial=True)
    adapters.activate()
    adapters.merge()
    with pytest.raises(ConfigError, match="lora merged into the upstream: unmerge\\(\\) before deactivating it"):
        adapters.activate(["bitfit"])


def test_a_merged_cnn_adapter_cannot_be_switched_off(load_expert):
    adapters = effspeech.attach(load_expert("hubert"), ["cnn", "lora"])
    adapters.merge()
    with pytest.raises(ConfigError, match="cnn, lora merged into the upstream"):
        adapters.activate([])


def test_a_flag_two_methods_set_stays_set_while_either_is_active(load_expert):
    expert = load_expert("hubert")
    network = expert.model
    original = network.feature_grad_mult
    adapters = effspeech.attach(expert, {"cnn": {}, "bitfit": {"include_extractor": True}})  # both train the CNN
    adapters.activate("bitfit")
    assert network.feature_grad_mult == 1.0
    adapters.activate([])
    assert network.feature_grad_mult == original
    adapters.activate()
    assert network.feature_grad_mult == 1.0
    adapters.detach()
    assert network.feature_grad_mult == original


def test_a_partial_state_replaces_only_its_methods(load_expert):
    expert = load_expert("hubert")
    adapters = effspeech.attach(expert, ["houlsby", "lora"])
    perturb(adapters)
    before = {key: value.clone() for key, value in adapters.state_dict().items()}
    lora = {key: torch.zeros_like(value) for key, value in before.items() if key.startswith("lora.")}
    adapters.load_state_dict(lora, partial=True)
    after = adapters.state_dict()
    assert all(torch.equal(after[key], torch.zeros_like(value)) for key, value in lora.items())
    assert all(torch.equal(after[key], value) for key, value in before.items() if key.startswith("houlsby."))
    with pytest.raises(ConfigError, match="missing keys"):
        adapters.load_state_dict(dict(list(lora.items())[1:]), partial=True)


def test_two_edits_of_one_attribute_switch_off_and_on_in_order():
    owner, injector = SimpleNamespace(flag="original", hook=None), Injector()
    injector.set_attribute(owner, "flag", "first")
    injector.set_attribute(owner, "flag", "second")
    injector.chain(owner, "hook", lambda value: value + 1)
    injector.set_active(False)
    assert owner.flag == "original" and owner.hook(1) == 1
    injector.set_active(True)
    assert owner.flag == "second" and owner.hook(1) == 2
    injector.undo_all()
    assert owner.flag == "original" and owner.hook is None
