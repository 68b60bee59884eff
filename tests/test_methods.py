"""Each method's parameter count, its placement and its effect, on S3PRL's own upstreams."""

from __future__ import annotations

import pytest
import torch

import effspeech
from effspeech.superb.random_upstream import build_network

from .conftest import FAMILIES

ZERO_INIT = ("houlsby", "adapterbias", "lora", "cnn", "dora", "ia3", "parallel", "lnfit")
DOWNSTREAM = ("layer_norm.", "post_extract_proj.", "encoder.")  # what S3PRL runs with gradients
ALL = ("houlsby", "adapterbias", "bitfit", "lora", "prefix", "prompt", "cnn", "dora", "ia3", "parallel", "lnfit", "elp")


def expected_count(method: str, network) -> int:
    """The paper's formulas, from the network's shapes (L layers, d dims, FFN width f)."""
    layers = len(network.encoder.layers)
    d = network.encoder.layers[0].fc2.out_features
    f = network.encoder.layers[0].fc2.in_features
    return {
        "houlsby": layers * (2 * d * 32 + 32 + d),
        "adapterbias": layers * (d + f + 1),
        "lora": layers * 2 * (2 * d * 8),
        "prefix": layers * 2 * 10 * d,
        "prompt": 10 * d,
        "bitfit": sum(
            p.numel() for n, p in network.named_parameters() if n.endswith(".bias") and n.startswith(DOWNSTREAM)
        ),
        "cnn": sum(block[0].weight.numel() for block in network.feature_extractor.conv_layers),
        "dora": layers * 2 * (2 * d * 8 + d),
        "ia3": layers * (d + d + f),
        "parallel": layers * (2 * d * 32 + 32 + d),
        "lnfit": layers * 4 * d + 2 * d,
        # per layer an E-adapter (down, up: bottleneck 256; LayerNorm) and an L-adapter (d -> 512; LayerNorm);
        # P: 10 frames
        "elp": layers * (2 * d * 256 + 256 + d + 2 * d) + layers * (d * 512 + 512 + 2 * 512) + 10 * d,
    }[method]


@pytest.fixture(scope="module")
def hubert_base():
    network, _ = build_network("hubert_base", seed=0)
    return network


PAPER_COUNTS_HUBERT_BASE = {
    "houlsby": 599_424,
    "adapterbias": 46_092,
    "lora": 294_912,
    "prefix": 184_320,
    "prompt": 7_680,
    "dora": 313_344,  # the 12*2*(2*768*8 + 768)
    "ia3": 55_296,  # 12*(768 + 768 + 3072)
    "parallel": 599_424,  # 12*(2*768*32 + 32 + 768)
    "lnfit": 38_400,  # 12*4*768 + 2*768
}
ELP_HUBERT_BASE = 9_494_016  # 12 * 395,776 (E) + 12 * 394,752 (L) + 10 * 768 (P)


@pytest.mark.parametrize("method", sorted(PAPER_COUNTS_HUBERT_BASE))
def test_paper_counts_on_hubert_base(hubert_base, method):
    adapters = effspeech.attach(hubert_base, method)
    try:
        assert adapters.num_trainable() == PAPER_COUNTS_HUBERT_BASE[method]
    finally:
        adapters.detach()


@pytest.mark.parametrize("method", ["bitfit", "cnn"])
def test_model_derived_counts_on_hubert_base(hubert_base, method):
    adapters = effspeech.attach(hubert_base, method)
    try:
        assert adapters.num_trainable() == expected_count(method, hubert_base)
    finally:
        adapters.detach()


def test_bitfit_count_on_hubert_base_is_the_encoder_biases(hubert_base):
    adapters = effspeech.attach(hubert_base, "bitfit")
    try:
        # 12 layers x (q,k,v,out: 4*768 + fc1: 3072 + fc2: 768 + 2 layer norms: 2*768) + encoder LN 768
        # + pos_conv 768 + feature layer norm 512 + post_extract_proj 768
        per_layer = 4 * 768 + 3072 + 768 + 2 * 768
        assert adapters.num_trainable() == 12 * per_layer + 768 + 768 + 512 + 768 == 104_192
    finally:
        adapters.detach()


def test_elp_count_on_hubert_base(hubert_base):
    """L-adapters sit on the hidden states S3PRL's expert collects: on the bare network they are refused."""
    flags = {name: p.requires_grad for name, p in hubert_base.named_parameters()}
    with pytest.raises(
        ValueError, match="elp's L-adapters act on the hidden states .* collected by its expert: attach to the expert"
    ):
        effspeech.attach(hubert_base, "elp")
    assert {name: p.requires_grad for name, p in hubert_base.named_parameters()} == flags  # left as it was
    assert not hasattr(hubert_base, "effspeech_adapters")
    adapters = effspeech.attach(hubert_base, {"elp": {"l": False}})
    try:
        by_part = {part: sum(p.numel() for k, p in adapters.named_parameters() if k.startswith(f"elp.{part}"))
                   for part in ("e", "p")}  # fmt: skip
        assert by_part == {"e": 4_749_312, "p": 7680}  # 12 * (2*768*256 + 256 + 768 + 2*768)
    finally:
        adapters.detach()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", sorted(PAPER_COUNTS_HUBERT_BASE) + ["bitfit", "cnn", "elp"])
def test_counts_on_tiny_configs(load_expert, family, method):
    expert = load_expert(family)
    adapters = effspeech.attach(expert, method)
    assert adapters.num_trainable() == expected_count(method, expert.model)


@pytest.mark.parametrize("first", ["houlsby", "dora"])
def test_specs_compose_and_counts_add(load_expert, first):
    expert = load_expert("hubert")
    adapters = effspeech.attach(expert, [first, "cnn"])
    by_method = adapters.num_trainable_by_method()
    assert by_method == {first: expected_count(first, expert.model), "cnn": expected_count("cnn", expert.model)}
    assert adapters.num_trainable() == sum(by_method.values())


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", ZERO_INIT)
def test_zero_initialised_methods_leave_hidden_states_unchanged(load_expert, wavs, family, method):
    expert = load_expert(family)
    with torch.no_grad():
        before = expert(wavs)["hidden_states"]
        effspeech.attach(expert, method)
        after = expert(wavs)["hidden_states"]
    assert len(after) == len(before)
    for old, new in zip(before, after):
        assert old.shape == new.shape
        assert (old - new).abs().max().item() <= 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_update_reaches_the_output_through_fused_attention(load_expert, wavs, family):
    expert = load_expert(family)
    with torch.no_grad():
        before = expert(wavs)["last_hidden_state"]
        adapters = effspeech.attach(expert, "lora")
        for _, _, update in adapters.methods["lora"].folded.sites:
            update.B.normal_(std=0.5)
        after = expert(wavs)["last_hidden_state"]
    assert (after - before).abs().max().item() > 1e-3


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_merge_matches_unmerged_and_unmerge_is_exact(load_expert, wavs, family):
    expert = load_expert(family)
    adapters = effspeech.attach(expert, {"lora": {"targets": ["q", "k", "v", "out", "fc1", "fc2"]}})
    with torch.no_grad():
        for _, _, update in adapters.methods["lora"].folded.sites:
            update.B.normal_(std=0.1)
        unmerged = expert(wavs)["hidden_states"]
        adapters.merge()
        q_proj = expert.model.encoder.layers[0].self_attn.q_proj
        assert not hasattr(q_proj, "parametrizations")  # merged: a plain weight, no per-call cost
        merged = expert(wavs)["hidden_states"]
        adapters.unmerge()
        again = expert(wavs)["hidden_states"]
    for a, b, c in zip(unmerged, merged, again):
        assert (a - b).abs().max().item() <= 1e-5
        assert torch.equal(a, c)


@pytest.mark.parametrize("family", FAMILIES)
def test_cnn_twins_receive_gradients_although_s3prl_runs_the_extractor_without_grad(load_expert, wavs, family):
    expert = load_expert(family)
    assert expert.model.feature_grad_mult == 0.0
    adapters = effspeech.attach(expert, "cnn")
    expert(wavs)["last_hidden_state"].pow(2).mean().backward()
    grads = [p.grad for p in adapters.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    adapters.detach()
    assert expert.model.feature_grad_mult == 0.0


def _manual_prompt_reference(expert, wavs, prompt_frames):
    """Run S3PRL's encoder layer by layer with the prompt prepended, on the bare network (no hooks)."""
    network = expert.model
    captured = {}

    def capture(_module, args, kwargs):
        captured.update(features=args[0], mask=kwargs["padding_mask"])

    handle = network.encoder.register_forward_pre_hook(capture, with_kwargs=True)
    expert(wavs)
    handle.remove()
    features, mask = captured["features"], captured["mask"]
    encoder = network.encoder
    x = features.clone()
    x[mask] = 0
    x = x + encoder.pos_conv(x.transpose(1, 2)).transpose(1, 2)
    if not encoder.layer_norm_first:
        x = encoder.layer_norm(x)
    n = prompt_frames.size(0)
    x = torch.cat([prompt_frames.unsqueeze(0).expand(x.size(0), -1, -1), x], dim=1).transpose(0, 1)
    mask = torch.cat([mask.new_zeros(mask.size(0), n), mask], dim=1)
    states, position_bias = [x], None
    for layer in encoder.layers:
        if hasattr(layer.self_attn, "compute_bias"):
            x, _, position_bias = layer(x, self_attn_padding_mask=mask, pos_bias=position_bias)
        else:
            x, _ = layer(x, self_attn_padding_mask=mask)
        states.append(x)
    states = [state.transpose(0, 1)[:, n:] for state in states]
    if encoder.layer_norm_first:
        states[-1] = encoder.layer_norm(states[-1])
    return states


@pytest.mark.parametrize("family", FAMILIES)
def test_prompt_is_removed_from_every_hidden_state_frame_aligned(load_expert, wavs, family):
    expert = load_expert(family)
    with torch.no_grad():
        plain = expert(wavs)["hidden_states"]
        adapters = effspeech.attach(expert, {"prompt": {"length": 7}})
        frames = expert.effspeech_adapters["prompt"].frames
        frames.normal_()
        prompted = expert(wavs)["hidden_states"]
        adapters.detach()  # the reference runs the bare network
        reference = _manual_prompt_reference(expert, wavs, frames)
    assert [h.shape for h in prompted] == [h.shape for h in plain]
    # the input of the first layer is untouched by the prompt: frame-exact alignment
    assert torch.equal(prompted[0], plain[0])
    for got, want in zip(prompted, reference):
        want = want[:, : got.size(1)]
        assert (got - want).abs().max().item() <= 1e-4
    assert (prompted[-1] - plain[-1]).abs().max().item() > 1e-3  # and the prompt did act


def _manual_prefix_attention(attention, x, mask, key_rows, value_rows):
    """Attention with learned rows in front of the keys and values, written out by hand."""
    t, b, d = x.shape
    h = attention.num_heads
    kv_input = torch.cat([key_rows.unsqueeze(1).expand(-1, b, -1), x])
    v_input = torch.cat([value_rows.unsqueeze(1).expand(-1, b, -1), x])
    q = attention.q_proj(x) * (d // h) ** -0.5
    k = attention.k_proj(kv_input)
    v = attention.v_proj(v_input)
    heads = lambda z: z.reshape(z.size(0), b * h, d // h).transpose(0, 1)  # noqa: E731
    scores = heads(q) @ heads(k).transpose(1, 2)
    full_mask = torch.cat([mask.new_zeros(b, key_rows.size(0)), mask], dim=1)
    scores = scores.view(b, h, t, -1).masked_fill(full_mask[:, None, None, :], float("-inf")).view(b * h, t, -1)
    out = (scores.softmax(-1) @ heads(v)).transpose(0, 1).reshape(t, b, d)
    return attention.out_proj(out)


@pytest.mark.parametrize("family", ["hubert", "wav2vec2"])
def test_prefix_attention_matches_a_hand_written_reference(load_expert, family):
    expert = load_expert(family)
    adapters = effspeech.attach(expert, {"prefix": {"length": 5}})
    attention = expert.model.encoder.layers[1].self_attn
    prefix = expert.effspeech_adapters["prefix"]["1"]
    x = torch.randn(9, 2, attention.embed_dim)
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[1, 6:] = True
    with torch.no_grad():
        got, _ = attention(query=x, key=x, value=x, key_padding_mask=mask, need_weights=False)
        want = _manual_prefix_attention(attention, x, mask, prefix.key, prefix.value)
    assert got.shape == x.shape
    assert (got - want).abs().max().item() <= 1e-5
    assert adapters.num_trainable() == 2 * 2 * 5 * attention.embed_dim


def test_prefix_on_wavlm_keeps_lengths_and_learns(load_expert, wavs):
    expert = load_expert("wavlm")
    with torch.no_grad():
        plain = expert(wavs)["hidden_states"]
    adapters = effspeech.attach(expert, {"prefix": {"layers": [1]}})
    prefixed = expert(wavs)["hidden_states"]
    assert [h.shape for h in prefixed] == [h.shape for h in plain]
    assert torch.allclose(prefixed[1], plain[1], atol=1e-5)  # layer 0 has no prefix
    prefixed[-1].pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in adapters.parameters())


def test_layers_and_placement_options_select_sites(load_expert):
    expert = load_expert("hubert")
    d = expert.model.encoder.layers[0].fc2.out_features
    adapters = effspeech.attach(expert, {"houlsby": {"placement": "both", "layers": [-1], "bottleneck": 4}})
    assert adapters.num_trainable() == 2 * (2 * d * 4 + 4 + d)
    assert sorted(expert.effspeech_adapters["houlsby"]["attn"].keys()) == ["1"]


def test_cnn_merge_folds_twins_into_the_convs_and_unmerge_is_exact(load_expert, wavs):
    expert = load_expert("hubert")
    with torch.no_grad():
        plain = expert(wavs)["last_hidden_state"]
    adapters = effspeech.attach(expert, {"cnn": {"scale": 0.5}})
    with torch.no_grad():
        for parameter in adapters.parameters():
            parameter.normal_(std=0.05)
        unmerged = expert(wavs)["hidden_states"]
        adapters.merge()
        merged = expert(wavs)["hidden_states"]
        adapters.unmerge()
        again = expert(wavs)["hidden_states"]
    for a, b, c in zip(unmerged, merged, again):
        assert (a - b).abs().max().item() <= 1e-4
        assert torch.equal(a, c)
    assert (unmerged[-1] - plain).abs().max().item() > 1e-3  # the twins do act, merged or not


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", ALL)
def test_every_method_moves_the_output_once_its_tensors_change(load_expert, wavs, family, method):
    """Zero-initialised tensors included (LoRA's B, a bottleneck's up projection): an update that never
    reached the output would train nothing."""
    expert = load_expert(family)
    adapters = effspeech.attach(expert, method)
    with torch.no_grad():
        before = expert(wavs)["hidden_states"]
        for parameter in adapters.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
        after = expert(wavs)["hidden_states"]
    assert max((a - b).abs().max().item() for a, b in zip(before, after)) > 1e-3


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", ["lora", "dora", "ia3"])
def test_merge_matches_unmerged_and_detach_after_merge_restores_the_tensors(load_expert, wavs, family, method):
    expert = load_expert(family)
    original = {name: p.detach().clone() for name, p in expert.named_parameters()}
    with torch.no_grad():
        plain = expert(wavs)["hidden_states"]
    adapters = effspeech.attach(expert, method)
    with torch.no_grad():
        for parameter in adapters.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
        unmerged = expert(wavs)["hidden_states"]
        adapters.merge()
        assert not hasattr(expert.model.encoder.layers[0].self_attn.k_proj, "parametrizations")
        merged = expert(wavs)["hidden_states"]
        adapters.unmerge()
        again = expert(wavs)["hidden_states"]
        adapters.merge()
    adapters.detach()
    for a, b, c in zip(unmerged, merged, again):
        assert (a - b).abs().max().item() <= 1e-4
        assert torch.equal(a, c)
    assert all(torch.equal(p, original[name]) for name, p in expert.named_parameters())
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(plain, expert(wavs)["hidden_states"]))


def _copy_linear(linear: torch.nn.Linear) -> torch.nn.Linear:
    """A plain Linear holding a (possibly parametrized) linear's original weight and bias."""
    copy = torch.nn.Linear(linear.in_features, linear.out_features)
    originals = getattr(linear, "parametrizations", {})
    with torch.no_grad():
        for name in ("weight", "bias"):
            source = originals[name].original if name in originals else getattr(linear, name)
            getattr(copy, name).copy_(source)
    return copy


def test_dora_matches_peft_on_the_same_weights(load_expert):
    peft = pytest.importorskip("peft")
    expert = load_expert("hubert")
    adapters = effspeech.attach(expert, "dora")
    q_proj = expert.model.encoder.layers[0].self_attn.q_proj
    (update,) = [p for module, _, p in adapters.methods["dora"].folded.sites if module is q_proj]
    holder = torch.nn.Module()
    holder.q_proj = _copy_linear(q_proj)
    peft.inject_adapter_in_model(peft.LoraConfig(r=8, lora_alpha=8, use_dora=True, target_modules=["q_proj"]), holder)
    with torch.no_grad():
        update.B.normal_(std=0.2)
        update.magnitude.mul_(torch.rand_like(update.magnitude) + 0.5)
        holder.q_proj.lora_A["default"].weight.copy_(update.A)
        holder.q_proj.lora_B["default"].weight.copy_(update.B)
        holder.q_proj.lora_magnitude_vector["default"].weight.copy_(update.magnitude)
        x = torch.randn(6, q_proj.in_features)
        ours = torch.nn.functional.linear(x, q_proj.weight, q_proj.bias)
        assert (ours - holder.q_proj(x)).abs().max().item() <= 1e-5
        assert (ours - torch.nn.functional.linear(x, holder.q_proj.base_layer.weight, q_proj.bias)).abs().max() > 1e-2


def test_ia3_matches_peft_on_the_same_weights(load_expert):
    peft = pytest.importorskip("peft")
    expert = load_expert("wav2vec2")
    adapters = effspeech.attach(expert, "ia3")
    layer = expert.model.encoder.layers[1]
    vectors = expert.effspeech_adapters["ia3"]["1"]
    holder = torch.nn.Module()
    holder.k_proj, holder.v_proj = _copy_linear(layer.self_attn.k_proj), _copy_linear(layer.self_attn.v_proj)
    holder.fc2 = _copy_linear(layer.fc2)
    config = peft.IA3Config(target_modules=["k_proj", "v_proj", "fc2"], feedforward_modules=["fc2"])
    peft.inject_adapter_in_model(config, holder)
    with torch.no_grad():
        for name, vector in (("k_proj", vectors.key), ("v_proj", vectors.value), ("fc2", vectors.ffn)):
            vector.mul_(torch.rand_like(vector) + 0.5)
            scale = getattr(holder, name).ia3_l["default"]
            scale.copy_(vector.view(scale.shape))
        for name, ours in (("k_proj", layer.self_attn.k_proj), ("v_proj", layer.self_attn.v_proj), ("fc2", layer.fc2)):
            x = torch.randn(6, ours.in_features)
            expected = getattr(holder, name)(x)
            assert (torch.nn.functional.linear(x, ours.weight, ours.bias) - expected).abs().max().item() <= 1e-5, name
    assert adapters.num_trainable() == expected_count("ia3", expert.model)


@pytest.mark.parametrize("family", FAMILIES)
def test_elp_l_adapters_are_what_the_head_reads_while_the_next_layer_reads_the_original(load_expert, wavs, family):
    expert = load_expert(family)
    with torch.no_grad():
        plain = expert(wavs)["hidden_states"]
    adapters = effspeech.attach(expert, {"elp": {"e": False, "p": False}})
    with torch.no_grad():
        read = expert(wavs)["hidden_states"]
    paths = expert.effspeech_adapters["elp"].l
    assert len(read) == len(plain) - 1  # the encoder's input has no path to the head
    with torch.no_grad():
        for index, state in enumerate(read):  # state i is layer i's output, from an unchanged stream
            assert state.shape == (*plain[index + 1].shape[:2], 512)
            assert (state - paths[str(index)](plain[index + 1])).abs().max().item() <= 1e-5
    assert adapters.num_trainable() == len(read) * (plain[0].size(-1) * 512 + 512 + 2 * 512)
    import s3prl.upstream.interfaces

    featurizer = s3prl.upstream.interfaces.Featurizer(expert, upstream_device="cpu")
    assert featurizer.output_dim == 512  # the weighted sum, and so the head, reads the L-adapters


@pytest.mark.parametrize("family", FAMILIES)
def test_elp_p_adapter_frames_lead_the_encoder_input_and_are_gone_from_every_hidden_state(load_expert, wavs, family):
    """Against a hand-made reference: the encoder's first hidden state computed from its input with the frames
    in front (masked positions zeroed, positional convolution, LayerNorm where the family has it there)."""
    expert = load_expert(family)
    with torch.no_grad():
        plain = expert(wavs)["hidden_states"]
    effspeech.attach(expert, {"elp": {"e": False, "l": False, "length": 7}})
    encoder = expert.model.encoder
    seen = {}
    handle = encoder.register_forward_pre_hook(lambda _m, args, kwargs: seen.update(args=args, kwargs=kwargs),
                                               with_kwargs=True)  # fmt: skip
    with torch.no_grad():
        prompted = expert(wavs)["hidden_states"]
        handle.remove()
        x = seen["args"][0].clone()  # what the encoder read, frames included
        mask = seen["kwargs"].get("padding_mask")
        assert torch.equal(x[:, :7], expert.effspeech_adapters["elp"].p.expand(x.size(0), -1, -1))
        if mask is not None:
            x[mask] = 0
        y = x + encoder.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not encoder.layer_norm_first:
            y = encoder.layer_norm(y)
    assert [h.shape for h in prompted] == [h.shape for h in plain]
    assert (prompted[0] - y[:, 7 : 7 + plain[0].size(1)]).abs().max().item() <= 1e-5
    assert (prompted[1] - plain[1]).abs().max().item() > 1e-4  # the frames do take part in attention


@pytest.mark.parametrize("pair", [["prompt", "elp"], ["elp", "prompt"]], ids="+".join)
def test_two_methods_that_add_frames_compose(load_expert, wavs, pair):
    expert = load_expert("hubert")
    with torch.no_grad():
        plain = expert(wavs)["hidden_states"]
        spec = {name: ({"e": False, "l": False} if name == "elp" else {}) for name in pair}
        effspeech.attach(expert, spec)
        both = expert(wavs)["hidden_states"]
    assert [h.shape for h in both] == [h.shape for h in plain]
