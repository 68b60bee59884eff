"""effspeech.tools.pretrain: train-split selection, k-means, label/frame alignment, and a short pretraining
run whose checkpoint S3PRL's ``hubert_local`` loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import effspeech.superb  # noqa: F401  (compatibility shims before s3prl)
from effspeech.tools import cli
from effspeech.tools.pretrain.config import PretrainConfig
from effspeech.tools.pretrain.data import AudioPool, training_files
from effspeech.tools.pretrain.features import LAGS, VOICE_BLOCK, VOICED, mfcc_deltas, num_frames, pitch, voice
from effspeech.tools.pretrain.kmeans import assign, fit_kmeans
from effspeech.tools.pretrain.model import build_model
from effspeech.tools.pretrain.train import masked_loss, pretrain
from effspeech.tools.synth import espeak
from effspeech.tools.synth.mini_superb import generate

STEPS = 20
needs_espeak = pytest.mark.skipif(not espeak.shutil.which(espeak.BINARY), reason="espeak-ng is not installed")


def _write(path: Path, seconds: float = 0.1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.zeros(int(16000 * seconds), dtype=np.float32), 16000)
    return path


def test_training_files_keep_only_train_splits(tmp_path):
    ks = tmp_path / "ks" / "speech_commands_v0.01"
    for name in ("yes/a_nohash_0.wav", "yes/b_nohash_0.wav", "no/c_nohash_0.wav", "_background_noise_/n.wav"):
        _write(ks / name)
    (ks / "validation_list.txt").write_text("yes/b_nohash_0.wav\n")
    (ks / "testing_list.txt").write_text("no/c_nohash_0.wav\n")
    fsc = tmp_path / "ic" / "fluent_speech_commands_dataset"
    _write(fsc / "wavs/speakers/s1/t.wav")
    _write(fsc / "wavs/speakers/s2/v.wav")
    (fsc / "data").mkdir()
    (fsc / "data/train_data.csv").write_text(",path,speakerId\n0,wavs/speakers/s1/t.wav,s1\n")
    (fsc / "data/valid_data.csv").write_text(",path,speakerId\n0,wavs/speakers/s2/v.wav,s2\n")
    vox = tmp_path / "sid" / "VoxCeleb1"
    _write(vox / "dev/wav/id1/v/00001.wav")
    _write(vox / "dev/wav/id1/w/00001.wav")
    (vox / "iden_split.txt").write_text("1 id1/v/00001.wav\n3 id1/w/00001.wav\n")
    libri = tmp_path / "asr" / "LibriSpeech"
    _write(libri / "train-clean-100/1/2/1-2-0000.flac")
    _write(libri / "test-clean/3/4/3-4-0000.flac")
    sd = tmp_path / "sd"
    (sd / "train").mkdir(parents=True)
    (sd / "train/wav.scp").write_text(f"train_0 {_write(sd / 'wav/train_0.wav')}\n")
    _write(sd / "wav/test_0.wav")
    _write(tmp_path / "er/IEMOCAP_full_release/Session1/sentences/wav/d/u.wav")

    found = {
        task: [str(path.relative_to(tmp_path)) for path in paths] for task, paths in training_files(tmp_path).items()
    }
    assert found == {
        "ks": ["ks/speech_commands_v0.01/yes/a_nohash_0.wav"],
        "ic": ["ic/fluent_speech_commands_dataset/wavs/speakers/s1/t.wav"],
        "sid": ["sid/VoxCeleb1/dev/wav/id1/v/00001.wav"],
        "asr": ["asr/LibriSpeech/train-clean-100/1/2/1-2-0000.flac"],
        "sd": ["sd/wav/train_0.wav"],
    }
    with pytest.raises(ValueError, match="no Mini-SUPERB train split"):
        training_files(tmp_path / "er")


def test_kmeans_is_deterministic_and_separates_clusters():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    truth = torch.arange(4).repeat_interleave(200)
    points = centres[truth] + 0.5 * torch.randn(len(truth), 2, generator=generator)
    centroids = fit_kmeans(points, 4, seed=3)
    assert torch.equal(centroids, fit_kmeans(points, 4, seed=3))
    labels = assign(points, centroids)
    pairs = set(zip(truth.tolist(), labels.tolist(), strict=True))
    assert len(pairs) == 4 and len({label for _, label in pairs}) == 4  # a one-to-one map of blobs


@pytest.mark.parametrize("feature_grad_mult", [0.0, 0.1])
def test_feature_grad_mult_zero_keeps_the_conv_extractor_at_init(feature_grad_mult):
    model, header = build_model("hubert_small", 10, 0, {"feature_grad_mult": feature_grad_mult})
    assert header["model_cfg"]["feature_grad_mult"] == feature_grad_mult
    samples = 16000
    torch.manual_seed(0)
    np.random.seed(0)
    targets = torch.randint(0, 10, (2, num_frames(samples)))
    wavs, valid = torch.randn(2, samples), torch.full((2,), samples)
    masked_loss(model.train(), wavs, valid, [targets], ["mfcc"])["loss"].backward()
    conv_grads = [parameter.grad for parameter in model.feature_extractor.parameters()]
    assert all(grad is None for grad in conv_grads) == (feature_grad_mult == 0)
    assert all(parameter.grad is not None for parameter in model.encoder.layers.parameters())


def test_each_codebook_gets_its_own_logits_and_loss_term():
    model, header = build_model("hubert_small", [10, 4], 0)
    assert header["dictionaries_symbols"] == [[str(i) for i in range(10)], [str(i) for i in range(4)]]
    assert header["model_cfg"]["untie_final_proj"] is True
    samples = 16000
    torch.manual_seed(0)
    np.random.seed(0)
    targets = [torch.randint(0, 10, (2, num_frames(samples))), torch.randint(0, 4, (2, num_frames(samples)))]
    result = masked_loss(model.train(), torch.randn(2, samples), torch.full((2,), samples), targets, ["mfcc", "pitch"])
    assert float(result["loss"].detach()) == pytest.approx(
        float(10 * result["features_pen"] + result["ce"] + result["ce_pitch"])
    )
    assert 0 <= result["accuracy_pitch"] <= 1


@pytest.mark.parametrize("hertz", [70.0, 110.0, 180.0, 260.0, 390.0])
def test_pitch_finds_the_f0_of_a_voice_like_wave_not_an_octave_below(hertz):
    time = torch.arange(16000) / 16000
    wave = sum(torch.sin(2 * torch.pi * k * hertz * time) / k for k in (1, 2, 3))
    features = pitch(wave)
    assert features.shape == (num_frames(16000), 2)
    f0, strength = features[5:-5, 0].exp(), features[5:-5, 1]  # frames away from the edges' zero padding
    assert torch.allclose(f0, torch.full_like(f0, hertz), rtol=0.02)
    assert (strength > 0.8).all()


def test_pitch_of_noise_is_unvoiced_at_the_floor():
    features = pitch(torch.randn(16000, generator=torch.Generator().manual_seed(0)))
    assert (features[:, 1] < VOICED).all()
    assert torch.allclose(features[:, 0].exp(), torch.full((len(features),), 16000 / LAGS[1]))


def test_voice_statistics_are_constant_per_2s_block_and_ignore_padding():
    time = torch.arange(32000) / 16000
    low, high = (sum(torch.sin(2 * torch.pi * k * hz * time) / k for k in (1, 2, 3)) for hz in (100.0, 200.0))
    features = voice(torch.cat([low, high]))
    assert features.shape == (num_frames(64000), 26)
    first, second = features[:VOICE_BLOCK], features[VOICE_BLOCK:]
    assert torch.equal(first, first[:1].expand_as(first)) and torch.equal(second, second[:1].expand_as(second))
    log_f0_mean = 12  # means of c1-c12, mean of log F0, then the standard deviations
    assert first[0, log_f0_mean].exp() == pytest.approx(100, rel=0.05)
    assert second[0, log_f0_mean].exp() == pytest.approx(200, rel=0.05)
    padded = voice(torch.cat([low[:16000], torch.zeros(16000)]))
    assert padded[0, log_f0_mean].exp() == pytest.approx(100, rel=0.05)  # the silent half is unvoiced


def test_a_one_cluster_codebook_is_refused_by_name(tmp_path, capsys):
    status = cli.main(["pretrain", "--data", str(tmp_path), "--out", str(tmp_path / "a.pt"), "--pitch-clusters", "1"])
    assert status == 2
    assert "pitch_clusters=1: use 0 (no such codebook) or at least 2 clusters" in capsys.readouterr().err
    assert not (tmp_path / "a.pt").exists()


def test_unknown_arch_override_is_named():
    with pytest.raises(ValueError, match="unknown hubert_small keys \\['feature_grad_mul'\\]"):
        build_model("hubert_small", 10, 0, {"feature_grad_mul": 0.0})


def test_crops_are_fixed_length_and_padded(tmp_path):
    pool = AudioPool.scan([_write(tmp_path / "short.wav", 0.5), _write(tmp_path / "long.wav", 3.0)])
    wavs, valid = pool.crops(np.random.default_rng(0), 16, 16000)
    assert wavs.shape == (16, 16000)
    assert set(valid.tolist()) == {8000, 16000}


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict:
    """The same tiny pretraining twice (CLI and Python API, same seed) on the tiny ASR train split;
    one thread, so that other jobs on a shared machine do not stall it."""
    if not espeak.shutil.which(espeak.BINARY):
        pytest.skip("espeak-ng is not installed")
    root = tmp_path_factory.mktemp("pretrain")
    generate("tiny", root / "data", seed=0, jobs=2, tasks=["asr"])
    options = {
        "steps": STEPS,
        "batch_size": 2,
        "crop_seconds": 1.0,
        "clusters": 20,
        "pitch_clusters": 4,
        "voice_clusters": 3,
        "lr": 2e-3,
        "log_every": 1,
        "threads": 1,
    }
    status = cli.main(
        ["pretrain", "--data", str(root / "data"), "--out", str(root / "a.pt")]
        + [f"--{name.replace('_', '-')}={value}" for name, value in options.items()]
    )
    assert status == 0
    second = pretrain(PretrainConfig(data=str(root / "data"), out=str(root / "b.pt"), **options), log=lambda _: None)
    return {"a": root / "a.pt", "b": second}


@needs_espeak
def test_pretraining_is_deterministic(runs):
    a, b = (torch.load(runs[key], weights_only=True)["model_weight"] for key in "ab")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[name], b[name]) for name in a)


@needs_espeak
def test_loss_decreases_and_curve_is_saved(runs):
    import json

    records = json.loads(runs["a"].with_name("a.loss.json").read_text())
    assert [record["step"] for record in records] == list(range(1, STEPS + 1))
    scores = {"ce", "accuracy", "ce_pitch", "accuracy_pitch", "ce_voice", "accuracy_voice"}
    assert all(scores <= record.keys() for record in records)
    losses = [record["loss"] for record in records]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert runs["a"].with_name("a.loss.png").stat().st_size > 0


@pytest.fixture(scope="session")
def expert(runs):
    """S3PRL's own ``hubert_local`` expert on the pretrained checkpoint."""
    import s3prl.hub

    return s3prl.hub.hubert_local(ckpt=str(runs["a"])).eval()


@needs_espeak
def test_hubert_local_loads_fp16_weights_into_fp32(runs, expert):
    state = torch.load(runs["a"], weights_only=True)
    loaded = expert.model.state_dict()
    for name, weight in state["model_weight"].items():
        if weight.is_floating_point():
            assert weight.dtype == torch.float16 and loaded[name].dtype == torch.float32
        assert torch.equal(loaded[name], weight.to(loaded[name].dtype))


@needs_espeak
@pytest.mark.parametrize("samples", [400, 719, 720, 1039, 16000, 16319, 35000])
def test_label_frames_match_the_conv_extractor(expert, samples):
    wav = torch.randn(samples, generator=torch.Generator().manual_seed(samples))
    with torch.no_grad():
        hidden = expert([wav])["hidden_states"]
    assert len(mfcc_deltas(wav)) == num_frames(samples) == hidden[0].size(1) == hidden[-1].size(1)


@needs_espeak
def test_hubert_adapter_loads_the_checkpoint(runs):
    import upstream_adapters

    expert = upstream_adapters.hubert_adapter(ckpt=str(runs["a"]), adapter="houlsby,lora").eval()
    with torch.no_grad():
        hidden = expert([torch.randn(16000)])["hidden_states"]
    assert len(hidden) == 5 and hidden[-1].shape == (1, num_frames(16000), 256)
    assert effspeech.adapters_of(expert).num_trainable() > 0
