"""Each shim of effspeech.superb.compat, exercised through the API s3prl calls."""

from __future__ import annotations

import argparse
import importlib

import numpy as np
import pytest
import soundfile
import torch
import torchaudio

from effspeech.superb import compat


@pytest.fixture
def stereo_8k(tmp_path):
    t = np.arange(8000) / 8000
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 220 * t)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), 8000, subtype="PCM_16")
    return path, np.stack([left, right])


def test_every_shim_stands_in_for_an_api_this_stack_lacks():
    assert compat.install() is compat.INSTALLED  # idempotent
    for name in compat.INSTALLED:
        assert name.split(":")[0].split(".")[0] in {"torchaudio", "catalyst", "torch"}


def test_set_audio_backend_is_a_no_op_that_s3prl_can_call():
    assert torchaudio.set_audio_backend("sox_io") is None
    importlib.import_module("s3prl.hub")  # some upstreams call it at import


def test_info_reports_rate_frames_channels_and_bits(stereo_8k):
    path, _ = stereo_8k
    meta = torchaudio.info(str(path))
    assert (meta.sample_rate, meta.num_frames, meta.num_channels, meta.bits_per_sample) == (8000, 8000, 2, 16)


def test_load_reads_channels_first_float_with_offset(stereo_8k):
    path, data = stereo_8k
    wav, rate = torchaudio.load(str(path))
    assert rate == 8000 and wav.shape == (2, 8000) and wav.dtype == torch.float32
    assert np.abs(wav.numpy() - data).max() < 1e-3
    part, _ = torchaudio.load(path, frame_offset=100, num_frames=50)
    assert torch.equal(part, wav[:, 100:150])


def test_load_reads_flac(tmp_path):
    path = tmp_path / "x.flac"
    soundfile.write(path, np.linspace(-0.5, 0.5, 1600), 16000)
    wav, rate = torchaudio.load(path)
    assert rate == 16000 and wav.shape == (1, 1600)


def test_sox_effects_used_by_speech_commands_downmix_resample_and_gain(stereo_8k):
    from torchaudio.sox_effects import apply_effects_file

    path, data = stereo_8k
    wav, rate = apply_effects_file(str(path), [["channels", "1"], ["rate", "16000"], ["gain", "-3.0"]])
    assert rate == 16000 and wav.shape == (1, 16000)
    expected_peak = data.mean(axis=0).max() * 10 ** (-3 / 20)
    assert abs(wav.abs().max().item() - expected_peak) < 0.02
    with pytest.raises(NotImplementedError, match="sox effect 'reverb'"):
        apply_effects_file(str(path), [["reverb", "50"]])


def test_speech_commands_recipe_imports_with_the_catalyst_sampler():
    from catalyst.data.sampler import DistributedSamplerWrapper

    importlib.import_module("s3prl.downstream.speech_commands.expert")
    sampler = torch.utils.data.WeightedRandomSampler([1.0] * 10, num_samples=10, generator=torch.Generator())
    shards = [list(DistributedSamplerWrapper(sampler, num_replicas=2, rank=rank, shuffle=False)) for rank in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 5
    assert all(0 <= index < 10 for shard in shards for index in shard)


def test_torch_load_accepts_s3prl_checkpoints_holding_a_namespace(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"Args": argparse.Namespace(upstream="hubert", lr=1e-4), "Step": 3}, path)
    state = torch.load(path)  # torch's default weights_only=True
    assert state["Args"].upstream == "hubert" and state["Step"] == 3
