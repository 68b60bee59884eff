"""Mini-SUPERB generator: each tiny corpus read by its S3PRL recipe's own dataset code."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile

from effspeech.tools import cli
from effspeech.tools.synth import espeak, voices
from effspeech.tools.synth.audio import SAMPLE_RATE
from effspeech.tools.synth.mini_superb import GENERATORS, generate

pytestmark = pytest.mark.skipif(not espeak.shutil.which(espeak.BINARY), reason="espeak-ng is not installed")


@pytest.fixture(scope="session")
def tiny(mini_superb) -> Path:
    return mini_superb


def test_meta_json(tiny):
    summary = json.loads((tiny / "meta.json").read_text())
    assert set(summary["tasks"]) == set(GENERATORS)
    for task in GENERATORS:
        meta = json.loads((tiny / task / "meta.json").read_text())
        assert (meta["preset"], meta["seed"], meta["engine"]["name"]) == ("tiny", 0, "espeak-ng")
        assert meta["engine"]["version"] == espeak.version()
        assert meta["hours"] > 0 and meta["audio_files"] > 0 and meta["counts"]


def test_speech_commands_recipe(tiny):
    from s3prl.downstream.speech_commands.dataset import CLASSES, SpeechCommandsDataset, SpeechCommandsTestingDataset
    from s3prl.downstream.speech_commands.expert import split_dataset

    root, test_root = tiny / "ks" / "speech_commands_v0.01", tiny / "ks" / "speech_commands_test_set_v0.01"
    datarc = {"speech_commands_root": str(root), "speech_commands_test_root": str(test_root)}
    train_list, valid_list = split_dataset(root)
    listed = set((root / "validation_list.txt").read_text().split())
    assert {f"{label}/{Path(path).name}" for label, path in valid_list} == listed
    train = SpeechCommandsDataset(train_list, **datarc)
    assert {CLASSES[label] for label, _ in [(train.class2index[c], p) for c, p in train.data]} == set(CLASSES)
    per_class = {c: sum(1 for label, _ in train.data if label == c) for c in CLASSES[:10]}
    assert min(per_class.values()) >= 15  # learnable by `make demo`
    for i in (0, len(train) - 1):
        wav, label, _ = train[i]
        assert wav.shape == (SAMPLE_RATE,) and CLASSES[label] == train.data[i][0]
    test = SpeechCommandsTestingDataset(**datarc)
    assert {label for label, _ in test.data} == set(CLASSES)
    wav, label, _ = test[0]
    assert wav.shape == (SAMPLE_RATE,)


def test_fluent_commands_recipe(tiny):
    from s3prl.downstream.fluent_commands.dataset import FluentCommandsDataset
    from s3prl.downstream.fluent_commands.expert import DownstreamExpert

    expert = SimpleNamespace(datarc={"file_path": str(tiny / "ic" / "fluent_speech_commands_dataset")})
    DownstreamExpert.get_dataset(expert)
    assert expert.values_per_slot == [6, 14, 4]  # the real corpus's actions, objects, locations
    speakers = [set(df.speakerId) for df in (expert.train_df, expert.valid_df, expert.test_df)]
    assert not (speakers[0] & speakers[1] or speakers[0] & speakers[2] or speakers[1] & speakers[2])
    test = FluentCommandsDataset(expert.test_df, expert.base_path, expert.Sy_intent)
    wav, label, _ = test[3]
    row = expert.test_df.loc[3]
    assert wav.ndim == 1 and 0.5 * SAMPLE_RATE < wav.size < 10 * SAMPLE_RATE
    assert [
        expert.Sy_intent[slot][int(i)] for slot, i in zip(("action", "object", "location"), label, strict=True)
    ] == [
        row.action,
        row.object,
        row.location,
    ]


def test_voxceleb1_recipe(tiny, monkeypatch, tmp_path):
    from s3prl.downstream.voxceleb1 import dataset as vox

    monkeypatch.setattr(vox, "CACHE_PATH", str(tmp_path))  # the recipe caches file lists by split name only
    root, meta = tiny / "sid" / "VoxCeleb1", tiny / "sid" / "VoxCeleb1" / "iden_split.txt"
    splits = {mode: vox.SpeakerClassifiDataset(mode, root, str(meta)) for mode in ("train", "dev", "test")}
    labels = {mode: set(data.label) for mode, data in splits.items()}
    assert labels["train"] == labels["dev"] == labels["test"] == set(range(10))  # identification: same speakers
    videos = {mode: {Path(p).parent.name for p in data.dataset} for mode, data in splits.items()}
    assert not (videos["train"] & videos["test"] or videos["dev"] & videos["test"])
    wav, label, name = splits["test"][0]
    assert (
        wav.ndim == 1
        and wav.size > SAMPLE_RATE
        and name.startswith(vox.SpeakerClassifiDataset.label2speaker([label])[0])
    )


def test_iemocap_recipe(tiny):
    from s3prl.downstream.emotion.dataset import IEMOCAPDataset

    root, meta = tiny / "er" / "IEMOCAP_full_release", tiny / "er" / "meta_data"
    for fold in range(1, 6):
        train = json.loads((meta / f"Session{fold}" / "train_meta_data.json").read_text())["meta_data"]
        test = json.loads((meta / f"Session{fold}" / "test_meta_data.json").read_text())["meta_data"]
        assert {m["path"].split("/")[0] for m in test} == {f"Session{fold}"}
        assert f"Session{fold}" not in {m["path"].split("/")[0] for m in train}
    data = IEMOCAPDataset(str(root), str(meta / "Session1" / "test_meta_data.json"), pre_load=False)
    assert set(data.class_dict) == {"neu", "hap", "ang", "sad"} and len(data) == 24
    for i in range(4):
        wav, label, name = data[i]
        assert wav.ndim == 1 and data.idx2emotion[label] == data.meta_data[i]["label"] and name.startswith("Ses01")


def test_librispeech_recipe(tiny):
    from s3prl.downstream.asr.dataset import SequenceDataset
    from s3prl.downstream.asr.dictionary import Dictionary

    asr = tiny / "asr"
    dictionary = Dictionary.load(str(asr / "char.dict"))
    assert len(dictionary.symbols) == 4 + 28
    data = SequenceDataset(
        "train", 4, dictionary, str(asr / "LibriSpeech"), str(asr / "len_for_bucket"), train=["train-clean-100"]
    )
    assert sum(len(batch) for batch in data.X) >= 78  # the last odd one may be dropped by the recipe
    wavs, labels, names = data[0]
    transcripts = dict(
        line.split(" ", 1) for f in (asr / "LibriSpeech").rglob("*.trans.txt") for line in f.read_text().splitlines()
    )
    for wav, label, name in zip(wavs, labels, names, strict=True):
        assert wav.ndim == 1 and wav.size > SAMPLE_RATE
        assert dictionary.string(label).replace(" ", "").replace("|", " ").strip() == transcripts[name]
    speakers = {
        s: {p.name for p in (asr / "LibriSpeech" / s).iterdir()} for s in ("train-clean-100", "dev-clean", "test-clean")
    }
    assert not (speakers["train-clean-100"] & speakers["test-clean"] or speakers["dev-clean"] & speakers["test-clean"])


def test_diarization_recipe(tiny):
    from s3prl.downstream.diarization.dataset import DiarizationDataset

    sd = tiny / "sd"
    train = DiarizationDataset("train", str(sd / "train"), chunk_size=2000, frame_shift=160, num_speakers=2)
    wav, labels = train[0]
    assert labels.shape == (wav.size // 160, 2)
    assert labels[:, 0].any() and labels[:, 1].any() and not labels.all()
    test = DiarizationDataset("test", str(sd / "test"), chunk_size=2000, frame_shift=160, num_speakers=2)
    chunks, _, rec = test[0]
    rttm = [line.split() for line in (sd / "test" / "rttm").read_text().splitlines() if line.split()[1] == rec]
    assert len({line[7] for line in rttm}) == 2
    speakers = {
        s: {line.split()[0] for line in (sd / s / "spk2utt").read_text().splitlines()} for s in ("train", "test")
    }
    assert speakers["train"] and not speakers["train"] & speakers["test"]


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes().replace(str(root.resolve()).encode(), b"ROOT")
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_deterministic_whatever_the_jobs(tiny, tmp_path):
    generate("tiny", tmp_path / "same", seed=0, jobs=1, tasks=["sid", "sd"])
    for task in ("sid", "sd"):
        assert _files(tmp_path / "same" / task) == _files(tiny / task)
    generate("tiny", tmp_path / "other", seed=1, tasks=["sid"])
    other, ours = _files(tmp_path / "other" / "sid"), _files(tiny / "sid")
    assert other.keys() != ours.keys() or other != ours
    first = sorted(p for p in (tmp_path / "other" / "sid").rglob("*.wav"))[0]
    assert not np.array_equal(soundfile.read(first)[0], soundfile.read(sorted((tiny / "sid").rglob("*.wav"))[0])[0])


def test_no_digital_silence(tiny):
    wav, _ = soundfile.read(sorted((tiny / "ks").rglob("yes/*.wav"))[0], dtype="int16")
    assert wav.size == SAMPLE_RATE and np.count_nonzero(wav[:800]) > 700


def test_missing_espeak_fails_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(espeak.EspeakError, match="espeak-ng not found.*apt-get install -y espeak-ng"):
        generate("tiny", tmp_path / "out", tasks=["ks"])
    assert cli.main(["synth", "--preset", "tiny", "--out", str(tmp_path / "out")]) == 2
    assert "espeak-ng not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_voice_is_an_error():
    good = voices.Speaker("Alicia", "F", "en-us", 50, 170, 1.0)
    voices.validate([good])
    for bad in (
        good.__class__("alicia", "F", "en-us", 50, 170, 1.0),
        good.__class__("Alicia", "F", "en-xx", 50, 170, 1.0),
    ):
        with pytest.raises(espeak.EspeakError, match="unknown espeak-ng"):
            voices.validate([bad])


def test_the_cache_makes_only_the_tasks_asked_for_and_the_rest_later(tiny, tmp_path, monkeypatch):
    """The demo generates only KS of a corpus; the leaderboard later completes it, KS untouched."""
    from effspeech.tools.synth.cache import COMPLETE, cached_corpus

    monkeypatch.setenv("EFFSPEECH_CACHE", str(tmp_path))
    root = cached_corpus("tiny", seed=0, jobs=2, tasks=["ks"])
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["ks"] and not (root / COMPLETE).exists()
    assert _files(root / "ks") == _files(tiny / "ks") | {COMPLETE: _files(root / "ks")[COMPLETE]}
    assert set(json.loads((root / "meta.json").read_text())["tasks"]) == {"ks"}
    made = (root / "ks" / "meta.json").stat().st_mtime_ns

    assert cached_corpus("tiny", seed=0, jobs=2) == root
    assert (root / COMPLETE).is_file() and (root / "ks" / "meta.json").stat().st_mtime_ns == made
    assert (
        json.loads((root / "meta.json").read_text())["tasks"] == json.loads((tiny / "meta.json").read_text())["tasks"]
    )
