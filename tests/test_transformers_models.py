"""Every method on Hugging Face transformers' HuBERT, wav2vec 2.0, WavLM and data2vec models (tiny random
ones built from configs, no download), through the same engine as on S3PRL's, and effspeech's LoRA
against PEFT's on the same weights."""

from __future__ import annotations

import copy

import pytest
import torch
import transformers

import effspeech
from effspeech.errors import UnsupportedModelError

from .test_methods import ALL, PAPER_COUNTS_HUBERT_BASE, ZERO_INIT

MODELS = {
    "hubert": transformers.HubertModel,
    "wav2vec2": transformers.Wav2Vec2Model,
    "wavlm": transformers.WavLMModel,
    "data2vec": transformers.Data2VecAudioModel,
}
TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(16, 16),
    conv_stride=(5, 2),
    conv_kernel=(10, 3),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    # as an upstream runs them for a downstream task: no LayerDrop, no SpecAugment of its own
    layerdrop=0.0,
    mask_time_prob=0.0,
    # "layer" norm in the extractor: padded batches are exact, so the masks can be checked
    feat_extract_norm="layer",
    conv_bias=True,
)
REFUSED = {("wavlm", "prefix"): "prefix on transformers' WavLM"}


def tiny(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = MODELS[family](MODELS[family].config_class(**TINY))
    return model.eval()


def hidden_states(model, waves: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    output = model(waves, attention_mask=mask, output_hidden_states=True)
    return (*output.hidden_states, output.last_hidden_state)


def perturb(adapters) -> None:
    """Move every trainable tensor off its initial value, as training would."""
    with torch.no_grad():
        for parameter in adapters.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)


@pytest.fixture
def waves() -> torch.Tensor:
    return torch.randn(2, 1600, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("family", MODELS)
@pytest.mark.parametrize("method", ALL)
def test_every_method_attaches_takes_effect_and_detaches_exactly(family, method, waves):
    model = tiny(family)
    if (family, method) in REFUSED:
        with pytest.raises(UnsupportedModelError, match=REFUSED[family, method]):
            effspeech.attach(model, method)
        assert not hasattr(model, "effspeech_adapters")
        return
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    with torch.no_grad():
        reference = hidden_states(model, waves)

    adapters = effspeech.attach(model, method)
    assert adapters.num_trainable() > 0
    with torch.no_grad():
        attached = hidden_states(model, waves)
    if method == "elp":  # L-adapters: one state per layer output, the head reads those instead
        assert len(attached) == len(reference) - 1
    else:
        assert [h.shape for h in attached] == [h.shape for h in reference]  # added frames are taken out
    if method in ZERO_INIT:
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(attached, reference))
    perturb(adapters)
    with torch.no_grad():
        moved = hidden_states(model, waves)
    assert not torch.allclose(moved[-1], reference[-1], atol=1e-4), "the method has no effect"
    sum(h.pow(2).mean() for h in hidden_states(model, waves)).backward()
    assert all(p.grad is not None for p in adapters.parameters()), "a trainable tensor gets no gradient"

    adapters.detach()
    assert not hasattr(model, "effspeech_adapters")
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    assert all(torch.equal(p, weights[name]) for name, p in model.named_parameters())
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(hidden_states(model, waves), reference))


@pytest.mark.parametrize("family", ["hubert", "wav2vec2", "wavlm"])  # data2vec's own states depend on padding
@pytest.mark.parametrize("method", ["prompt", "prefix", "elp"])
def test_added_rows_keep_the_padding_mask_right(family, method):
    """A clip padded in a batch gives the same states on its own frames as alone: the masks were extended.
    (transformers' Data2VecAudioModel gives a padded clip other states than the clip alone by itself.)"""
    if (family, method) in REFUSED:
        pytest.skip(REFUSED[family, method])
    model = tiny(family)
    adapters = effspeech.attach(model, {"elp": {"l": False}} if method == "elp" else method)
    perturb(adapters)
    short, long = torch.randn(1, 1200), torch.randn(1, 1600)
    batch = torch.cat([torch.nn.functional.pad(short, (0, 400)), long])
    mask = torch.tensor([[1] * 1200 + [0] * 400, [1] * 1600])
    with torch.no_grad():
        alone = hidden_states(model, short)
        padded = hidden_states(model, batch, mask)
    frames = alone[-1].size(1)
    for a, b in zip(alone, padded):
        assert torch.allclose(a[0], b[0, :frames], atol=1e-5)


@pytest.fixture(scope="module")
def hubert_base():
    return transformers.HubertModel(transformers.HubertConfig())


@pytest.mark.parametrize("method", sorted(PAPER_COUNTS_HUBERT_BASE))
def test_counts_on_a_hubert_base_configuration_match_s3prl(hubert_base, method):
    adapters = effspeech.attach(hubert_base, method)
    try:
        assert adapters.num_trainable() == PAPER_COUNTS_HUBERT_BASE[method]
    finally:
        adapters.detach()


def test_a_model_of_another_layout_is_refused_naming_what_was_looked_for():
    bert = transformers.BertModel(transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2))
    with pytest.raises(UnsupportedModelError, match="looked for an encoder with .layers .* feed_forward"):
        effspeech.attach(bert, "lora")


def test_lora_equals_peft_lora_in_hidden_states_and_gradients(waves):
    peft = pytest.importorskip("peft")
    ours = tiny("hubert")
    theirs = peft.get_peft_model(
        copy.deepcopy(ours), peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj"])
    )
    effspeech.attach(ours, {"lora": {"rank": 4, "alpha": 8, "targets": ["q", "k"]}})
    pairs = []
    generator = torch.Generator().manual_seed(2)
    for index, layer in enumerate(theirs.base_model.model.encoder.layers):
        for role, name in (("q", "q_proj"), ("k", "k_proj")):
            update = ours.effspeech_adapters["lora"][str(index)][role]
            linear = getattr(layer.attention, name)
            with torch.no_grad():
                update.A.copy_(torch.randn(update.A.shape, generator=generator))
                update.B.copy_(torch.randn(update.B.shape, generator=generator) * 0.1)  # B = 0 would hide A's grad
                linear.lora_A["default"].weight.copy_(update.A)
                linear.lora_B["default"].weight.copy_(update.B)
            pairs.append((update, linear))

    projection = torch.randn(32, generator=generator)
    ours_states, theirs_states = hidden_states(ours, waves), hidden_states(theirs, waves)
    for a, b in zip(ours_states, theirs_states):
        assert torch.allclose(a, b, atol=1e-5)
    sum((h @ projection).pow(2).mean() for h in ours_states).backward()
    sum((h @ projection).pow(2).mean() for h in theirs_states).backward()
    for update, linear in pairs:
        assert torch.allclose(update.A.grad, linear.lora_A["default"].weight.grad, atol=1e-5)
        assert torch.allclose(update.B.grad, linear.lora_B["default"].weight.grad, atol=1e-5)
        assert update.A.grad.abs().sum() > 0


def _peft_model(base, directory):
    peft = pytest.importorskip("peft")
    return peft.PeftModel.from_pretrained(copy.deepcopy(base), str(directory)).eval()


@pytest.mark.parametrize(
    "spec",
    [
        {"lora": {"rank": 4, "alpha": 16, "targets": ["q", "v", "fc2"]}},
        {"lora": {"rank": 2, "targets": ["k", "out", "fc1"], "layers": [1]}},
        {"dora": {"rank": 4, "targets": ["q", "k"]}},
        {"ia3": {}},
    ],
    ids=["lora", "lora-layer1", "dora", "ia3"],
)
def test_save_peft_is_read_by_peft_into_the_same_hidden_states(spec, waves, tmp_path):
    base = tiny("hubert")
    ours = copy.deepcopy(base)
    adapters = effspeech.attach(ours, spec)
    perturb(adapters)
    adapters.save_peft(tmp_path / "peft")
    theirs = _peft_model(base, tmp_path / "peft")
    with torch.no_grad():
        for a, b in zip(hidden_states(ours, waves), hidden_states(theirs, waves)):
            assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize(
    "config",
    [
        {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "k_proj"]},
        {"r": 3, "lora_alpha": 5, "target_modules": ["v_proj", "out_proj", "intermediate_dense", "output_dense"]},
        {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "layers_to_transform": [0], "use_rslora": True},
        {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], "use_dora": True},
    ],
    ids=["qk", "v-out-ffn", "rslora-layer0", "dora"],
)
def test_load_peft_reproduces_peft_s_outputs(config, waves, tmp_path):
    peft = pytest.importorskip("peft")
    base = tiny("wav2vec2")
    torch.manual_seed(3)
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(**config, init_lora_weights=False)).eval()
    theirs.save_pretrained(tmp_path / "peft")
    ours = copy.deepcopy(base)
    adapters = effspeech.load_peft(ours, tmp_path / "peft")
    assert adapters.num_trainable() == sum(p.numel() for n, p in theirs.named_parameters() if "lora_" in n)
    with torch.no_grad():
        for a, b in zip(hidden_states(ours, waves), hidden_states(theirs, waves)):
            assert torch.allclose(a, b, atol=1e-5)


def test_methods_without_a_peft_counterpart_are_refused_and_nothing_is_written(tmp_path):
    adapters = effspeech.attach(tiny("hubert"), "houlsby")
    with pytest.raises(ValueError, match="houlsby has no PEFT counterpart"):
        adapters.save_peft(tmp_path / "peft")
    assert not (tmp_path / "peft").exists()
    wavlm = effspeech.attach(tiny("wavlm"), "lora")
    with pytest.raises(ValueError, match="PEFT's modules there would not take effect"):
        wavlm.save_peft(tmp_path / "peft")
    assert not (tmp_path / "peft").exists()
