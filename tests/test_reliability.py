"""Faults that need no training run: check-data on a corrupted copy, the guarded reader, fast config errors
and odd upstream inputs (docs/reliability.md)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import effspeech.superb  # noqa: F401  (compatibility shims before s3prl)
from effspeech.superb.trainer import pipeline
from effspeech.superb.trainer.audio_reads import BadAudio, tapped_reads
from effspeech.superb.trainer.bad_data import BadDataLog, GuardedCollate, GuardedDataset
from effspeech.superb.trainer.main import run
from effspeech.superb.upstream import load_upstream, pad_short_waves
from effspeech.tools.cli import main as cli

RATE = 16000


def corrupt(path: Path, fault: str) -> None:
    """Replace ``path`` (a 16 kHz mono WAV) by a file with ``fault``."""
    tone = 0.1 * np.sin(np.arange(RATE) / 8).astype(np.float32)
    if fault == "unreadable":
        path.write_bytes(b"not audio at all")
    elif fault == "zero-length":
        path.write_bytes(b"")
    elif fault == "truncated":
        path.write_bytes(path.read_bytes()[:4000])
    elif fault == "empty":
        soundfile.write(path, np.zeros(0, np.float32), RATE)
    elif fault == "nan":
        soundfile.write(path, np.where(np.arange(RATE) == 5, np.nan, tone).astype(np.float32), RATE, subtype="FLOAT")
    elif fault == "clipped":
        soundfile.write(path, np.clip(tone * 100, -1, 1), RATE)
    elif fault == "rate":
        soundfile.write(path, tone[:8000], 8000)
    elif fault == "stereo":
        soundfile.write(path, np.stack([tone, tone], axis=1), RATE)


EXPECTED = {  # fault -> (severity, words of the report)
    "unreadable": ("error", "unreadable: Error opening"),
    "zero-length": ("error", "unreadable: Error opening"),
    "truncated": ("error", "truncated: header promises more data"),
    "empty": ("error", "empty: zero samples"),
    "nan": ("error", "1 NaN/inf samples"),
    "clipped": ("warning", "clipped:"),
    "rate": ("warning", "sample rate 8000 Hz, not 16000"),
    "stereo": ("warning", "2 channels, not 1"),
}


@pytest.fixture
def ks_copy(tmp_path, mini_superb) -> Path:
    """A private copy of Mini-SUPERB's ks/ (the shared fixture is never touched)."""
    shutil.copytree(mini_superb / "ks", tmp_path / "ks")
    return tmp_path


def test_check_data_names_every_faulty_file(ks_copy, mini_superb, capsys):
    assert cli(["check-data", "-d", "ks", "--data-root", str(mini_superb)]) == 0
    assert ", 0 errors, 0 warnings" in capsys.readouterr().out

    files = sorted((ks_copy / "ks" / "speech_commands_v0.01" / "yes").glob("*.wav"))
    for fault, path in zip(EXPECTED, files, strict=False):
        corrupt(path, fault)
    odd_label = ks_copy / "ks" / "speech_commands_test_set_v0.01" / "maybe"
    odd_label.mkdir()
    shutil.copy(files[-1], odd_label / "x.wav")

    assert cli(["check-data", "-d", "ks", "--data-root", str(ks_copy)]) == 1
    report = capsys.readouterr().out.splitlines()
    for (fault, (severity, words)), path in zip(EXPECTED.items(), files, strict=False):
        assert any(line.startswith(severity) and f"{path}: {words}" in line for line in report), (fault, report)
    assert any(f"{odd_label / 'x.wav'}: label 'maybe' is not in the label set" in line for line in report)
    assert report[-1] == "speech_commands: 581 audio files, 6 errors, 3 warnings"


def test_check_data_finds_files_listed_but_missing(tmp_path, mini_superb, capsys):
    shutil.copytree(mini_superb / "sid", tmp_path / "sid")
    split = tmp_path / "sid" / "VoxCeleb1" / "iden_split.txt"
    split.write_text(split.read_text() + "3 id10001/nowhere/00009.wav\n1 id99999/x/00001.wav\n")
    assert cli(["check-data", "-d", "sid", "--data-root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "error   " in out and "id10001/nowhere/00009.wav: listed in the metadata but missing" in out
    assert "label 'id99999' is not in the label set" in out


def test_guarded_reader_converts_only_where_the_recipe_would_not(tmp_path, caplog):
    stereo = tmp_path / "stereo44k.wav"
    tone = np.sin(np.arange(44100) / 8).astype(np.float32) * 0.1
    soundfile.write(stereo, np.stack([tone, tone], axis=1), 44100)
    import torchaudio

    with tapped_reads(converts_audio=False):  # IC's recipe: torchaudio.load, no resampling, no down-mix
        wav, rate = torchaudio.load(str(stereo))
    assert rate == RATE and wav.shape == (1, RATE)
    assert "down-mixed to mono" in caplog.text and "resampled to 16000" in caplog.text
    with tapped_reads(converts_audio=False):  # SD: soundfile.read, 1-D for mono; segments at 16 kHz offsets
        assert soundfile.read(stereo)[0].shape == (RATE,)
        with pytest.raises(BadAudio, match="44100 Hz: this recipe reads segments at 16000 Hz offsets"):
            soundfile.read(stereo, start=100, stop=200)
    with tapped_reads(converts_audio=True):  # KS's sox effects do it themselves: left alone
        assert torchaudio.load(str(stereo))[0].shape == (2, 44100)
    assert soundfile.read.__module__ == "soundfile"  # the tap is gone afterwards


def test_guarded_dataset_attributes_each_failure_to_its_file(tmp_path):
    good, bad = tmp_path / "good.wav", tmp_path / "bad.wav"
    soundfile.write(good, np.zeros(RATE, np.float32) + 0.1, RATE)
    corrupt(bad, "nan")
    import torchaudio

    dataset = GuardedDataset(WavList([good, bad, tmp_path / "missing.wav"]))
    with tapped_reads(converts_audio=False):  # SID
        items = [dataset[i] for i in range(3)]
        with pytest.raises(BadAudio, match="bad.wav: 1 NaN/inf samples"):
            torchaudio.load(str(bad))
    assert isinstance(items[0], torch.Tensor)
    assert (items[1].path, items[1].what) == (str(bad), "1 NaN/inf samples")
    assert items[2].path.endswith("missing.wav") and items[2].what.startswith("unreadable:")

    batch = GuardedCollate(lambda samples: list(zip(*samples, strict=True)))([(1,), items[1], (2,)])
    with pytest.raises(Exception, match=r"bad audio .*bad.wav: 1 NaN/inf samples .*on_bad_data=skip"):
        list(BadDataLog("stop").batches([batch]))
    skipping = BadDataLog("skip")
    assert list(skipping.batches([batch, (3,)])) == [(0, [(1, 2)]), (1, (3,))]
    assert skipping.summary() == {"policy": "skip", "skipped_items": 1, "files": {str(bad): "1 NaN/inf samples"}}


class WavList(list):
    """A recipe-like dataset: item i is the waveform of file i, read through torchaudio.load."""

    def __getitem__(self, index: int) -> torch.Tensor:
        import torchaudio

        return torchaudio.load(str(super().__getitem__(index)))[0]


def _argv(tmp_path: Path, upstream: str, *extra: str, task: str = "ks") -> list[str]:
    return ["-m", "train", "-u", upstream, "-k", "x.pt", "-d", task, "-p", str(tmp_path / "exp"), "--device", "cpu",
            "--data-root", str(tmp_path / "no-data"), *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "error", "words"),
    [
        (["--adapter", "nonsense"], KeyError, "unknown adapter method 'nonsense'; valid names: adapterbias, bitfit"),
        (["--adapter", "lora", "-o", "config.adapter.lora.rank=0"], ValueError, "rank must be"),
        (["--adapter", "houlsby", "-o", "config.adapter.houlsby.bottleneck=-4"], ValueError, "bottleneck must be"),
        (["--adapter", "prefix", "-o", "config.adapter.prefix.length=100000"], ValueError, "length must be at most"),
    ],
)
def test_bad_method_or_hyperparameter_fails_before_data_or_model(tmp_path, monkeypatch, extra, error, words):
    monkeypatch.setattr(pipeline, "build_pipeline", lambda *a: pytest.fail("a model was built"))
    start = time.time()
    with pytest.raises(error, match=words):
        run(_argv(tmp_path, "hubert_adapter", *extra))
    assert time.time() - start < 10


def test_unknown_task_and_upstream_list_the_valid_names(tmp_path):
    with pytest.raises(ValueError, match=r"unknown upstream 'hubert_adaptor'; valid: hubert_adapter, .* such as"):
        run(_argv(tmp_path, "hubert_adaptor"))
    with pytest.raises(ValueError, match=r"unknown downstream 'kws'; known: ks \(speech_commands\), ic \("):
        run(_argv(tmp_path, "hubert_adapter", task="kws"))


@pytest.mark.parametrize(
    "adapter", ["lora", "bitfit", "adapterbias", "cnn", "houlsby,prefix,lora", "dora,parallel", "ia3", "lnfit", "elp"]
)
def test_odd_inputs_give_right_lengths_with_the_other_methods(tiny_checkpoints, adapter):
    """tests/test_cli.py covers none/prefix/prompt/houlsby on every family; these are the remaining methods."""
    expert = load_upstream("hubert_adapter", tiny_checkpoints["hubert"], adapter)[0].eval()
    with torch.no_grad():
        for lengths, frames in [([120], 1), ([0, 399], 1), ([300, 16000], 49), ([16000 * 20], 999)]:
            states = expert(pad_short_waves([torch.zeros(n) for n in lengths]))["hidden_states"]
            assert all(h.shape[:2] == (len(lengths), frames) and torch.isfinite(h).all() for h in states)
