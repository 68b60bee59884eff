"""Prediction with trained checkpoints: ``load_task`` on every task, ``effspeech predict`` over a test split
giving exactly the metric ``-m evaluate`` reports (KS, IC, ASR), bad files, and ``load_tasks`` serving
several tasks on one upstream as each would alone."""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
import sys
from pathlib import Path

import editdistance
import numpy as np
import pandas as pd
import pytest
import soundfile
import torch

import effspeech
from effspeech.errors import ConfigError
from effspeech.superb import records
from effspeech.superb.inference import audio_files, load_task, load_tasks, prepare, read
from effspeech.superb.random_upstream import make_checkpoint
from effspeech.superb.tasks import by_alias
from effspeech.superb.tasks.ks import CLASSES
from effspeech.superb.tasks.prediction import recipe_module
from effspeech.superb.tasks.sd import rttm_lines, segments
from effspeech.superb.trainer.main import run
from effspeech.tools.synth import espeak
from tests.test_trainer_e2e import REPO, train_argv

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which(espeak.BINARY), reason="espeak-ng is not installed (Mini-SUPERB needs it)"),
]

STEPS = "config.runner.total_steps=6,,config.runner.eval_step=3,,config.runner.save_step=6"
EVAL_ONE = {"asr": "config.downstream_expert.datarc.eval_batch_size=1"}  # SUPERB's; lets the split run in any order


def train(tmp: Path, task: str, data: Path, upstream: str, adapter: str = "houlsby", seed: int = 1337) -> Path:
    """A few steps of ``task`` with ``adapter`` (``none``: the weighted sum); its best-dev checkpoint."""
    expdir = tmp / f"{task}-{adapter}-{seed}"
    argv = train_argv(task, expdir, data, upstream, ",,".join(filter(None, [STEPS, EVAL_ONE.get(task)])))
    argv[argv.index("--adapter") + 1] = adapter
    run([*argv, "--seed", str(seed)])
    return records.best_checkpoint(expdir, by_alias(task).best_checkpoint)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mini_superb, hubert_tiny):
    """``trained(task, adapter="houlsby", seed=1337)``: a checkpoint, trained once per module."""
    folder, made = tmp_path_factory.mktemp("trained"), {}

    def get(task: str, adapter: str = "houlsby", seed: int = 1337) -> Path:
        if (task, adapter, seed) not in made:
            made[task, adapter, seed] = train(folder, task, mini_superb, hubert_tiny, adapter, seed)
        return made[task, adapter, seed]

    return get


def waves_of(paths: list[Path]) -> list[np.ndarray]:
    return [soundfile.read(path, dtype="float32")[0] for path in paths]


# ------------------------------------------------------------------------------------------ every task
@pytest.mark.parametrize("task", ["ks", "ic", "sid", "er", "asr", "sd"])
def test_load_task_predicts_one_answer_per_wave_in_the_task_s_own_terms(task, trained, mini_superb):
    model = effspeech.load_task(trained(task))
    assert model.task == task and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    files = audio_files([mini_superb / task])[:3]  # ASR's are FLAC
    predictions = model.predict(waves_of(files), batch_size=2, scores=True)
    assert len(predictions) == 3
    labels = model.labels
    for prediction in predictions:
        if task in ("ks", "sid", "er"):
            assert prediction["label"] in labels
            assert math.isclose(sum(prediction["scores"].values()), 1.0, abs_tol=1e-4)
            assert max(prediction["scores"], key=prediction["scores"].get) == prediction["label"]
        elif task == "ic":
            assert list(labels) == ["action", "object", "location"]
            assert all(value in labels[slot] for slot, value in zip(labels, prediction["label"].split(",")))
        elif task == "asr":
            assert labels is None and isinstance(prediction["text"], str)
        else:
            assert labels is None
            assert all(0 <= s["start"] < s["end"] and s["speaker"] in (0, 1) for s in prediction["segments"])
    if task == "ks":
        assert labels == list(CLASSES)
    if task == "sid":
        assert labels[:2] == ["id10001", "id10002"] and len(labels) == 1251  # the recipe's VoxCeleb1 ids


# ---------------------------------------------------------------------- faithful to -m evaluate
# Each recipe's test split in its own loader's order with the truth, and the predictions its -m evaluate
# wrote, keyed as it keys them; then the same keys for a predicted path and what was predicted.
def _ks_split(expert: dict) -> tuple[list[Path], list[str]]:
    dataset = recipe_module("speech_commands", "dataset").SpeechCommandsTestingDataset(**expert["datarc"])
    return [Path(path) for _, path in dataset.data], [label for label, _ in dataset.data]


def _ic_split(expert: dict) -> tuple[list[Path], list[str]]:
    root = Path(expert["datarc"]["file_path"])
    table = pd.read_csv(root / "data" / "test_data.csv")
    return [root / path for path in table.path], [",".join(s) for s in zip(table.action, table.object, table.location)]


def _asr_split(expert: dict) -> tuple[list[Path], list[str]]:
    datarc = expert["datarc"]
    paths = [
        Path(datarc["libri_root"], name)
        for name in pd.read_csv(Path(datarc["bucket_file"], "test-clean.csv")).file_path
    ]
    texts = []
    for path in paths:
        trans = path.parent / f"{path.parent.parent.name}-{path.parent.name}.trans.txt"
        texts.append(
            dict(line.split(" ", 1) for line in trans.read_text().splitlines())[path.name.split(".")[0]].upper()
        )
    return paths, texts


def _lines(path: Path, separator: str) -> dict[str, str]:
    return dict(line.split(separator, 1) for line in path.read_text().splitlines() if line)


FAITHFUL = {  # task: (split, metric, the recipe's predictions by key, key of a path, what we predicted)
    "ks": (_ks_split, "acc", lambda d: _lines(d / "test_predict.txt", " "), lambda p: f"{p.parent.name}-{p.name}",
           "label"),
    "ic": (_ic_split, "acc", lambda d: _lines(d / "test_predict.csv", ","), lambda p: p.stem, "label"),
    "asr": (_asr_split, "wer", lambda d: _lines(d / "test-clean-noLM-hyp.ark", " "), lambda p: p.stem, "text"),
}  # fmt: skip


def _noisy_head(ckpt: Path, out: Path) -> Path:
    """The checkpoint with noise on its head: after a few steps an ASR head emits only blanks, which two
    decoders would agree on whatever they did; a noisy one emits characters."""
    state = records.load_state(ckpt)
    generator = torch.Generator().manual_seed(0)
    for value in state.downstream.values():
        if value.is_floating_point():
            value.add_(torch.randn(value.shape, generator=generator))
    return records.save_state(state, out)


@pytest.mark.parametrize("task", ["ks", "ic", "asr"])
def test_predicting_the_test_split_gives_the_recipe_s_predictions_and_its_metric(task, trained, tmp_path):
    ckpt = trained(task) if task != "asr" else _noisy_head(trained(task), tmp_path / "noisy.ckpt")
    run(["-m", "evaluate", "-e", str(ckpt), "-p", str(tmp_path / "eval"), "--device", "cpu"])
    _, reported = records.evaluation(records.read_results(tmp_path / "eval"))
    split, metric, recipe_predictions, key, field = FAITHFUL[task]
    expert = records.load_state(ckpt).config["downstream_expert"]
    paths, truths = split(expert)
    batch = expert["datarc"].get("eval_batch_size") or expert["datarc"]["batch_size"]  # what its test loader batches
    out = tmp_path / "predictions.jsonl"
    command = [sys.executable, "-m", "effspeech.tools.cli", "predict", "-e", str(ckpt), *map(str, paths)]
    done = subprocess.run(
        [*command, "--out", str(out), "--batch", str(batch), "--in-order"], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["path"] for line in lines] == [str(path) for path in paths]

    predicted = {key(Path(line["path"])): line[field] for line in lines}
    assert predicted == recipe_predictions(tmp_path / "eval")  # file by file
    assert len(set(predicted.values())) > 1  # not a head that says one thing to everything
    if metric == "acc":
        measured = float(np.mean([line["label"] == truth for line, truth in zip(lines, truths)]))
    else:  # the recipe's WER: word edit distance over all reference words, in %
        errors = sum(editdistance.eval(line["text"].split(), truth.split()) for line, truth in zip(lines, truths))
        measured = 100 * errors / sum(len(truth.split()) for truth in truths)
    assert measured == pytest.approx(reported[metric], abs=1e-9), (measured, reported)


def test_batches_run_longest_first_and_predictions_come_back_in_the_order_given(trained, mini_superb):
    model = effspeech.load_task(trained("ks"))
    waves = [wave[: 16000 - 1500 * i] for i, wave in enumerate(waves_of(audio_files([mini_superb / "ks"])[:7]))]
    batches = model.batches([torch.from_numpy(wave) for wave in waves], batch_size=3)
    assert [indices for indices, _ in batches] == [[0, 1, 2], [3, 4, 5], [6]]  # longest first
    reversed_batches = model.batches([torch.from_numpy(wave) for wave in waves[::-1]], batch_size=3)
    assert [indices for indices, _ in reversed_batches] == [[6, 5, 4], [3, 2, 1], [0]]
    forward = model.predict(waves, batch_size=3, scores=True)
    backward = model.predict(waves[::-1], batch_size=3, scores=True)[::-1]  # the same batches, run in other order
    assert [p["label"] for p in forward] == [p["label"] for p in backward]
    for a, b in zip(forward, backward):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-6)
    whole = model.predict(waves, batch_size=len(waves), scores=True, in_order=True)  # one batch either way
    for a, b in zip(whole, model.predict(waves, batch_size=len(waves), scores=True)):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-6)


def test_an_experiment_directory_means_its_best_dev_checkpoint(trained, mini_superb, tmp_path):
    best = trained("ks")
    expdir = tmp_path / "exp"
    shutil.copytree(best.parent, expdir)
    _noisy_head(best, expdir / "states-99.ckpt")  # the newest periodic checkpoint, and another head
    files = sorted((mini_superb / "ks").rglob("*.wav"))[:4]
    from_dir = load_task(expdir).predict(waves_of(files), scores=True)
    assert from_dir == load_task(best).predict(waves_of(files), scores=True)
    assert from_dir != load_task(expdir / "states-99.ckpt").predict(waves_of(files), scores=True)


# -------------------------------------------------------------------------------------------- bad input
def test_bad_files_get_a_line_each_and_the_rest_is_still_predicted(trained, mini_superb, tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    good = sorted((mini_superb / "ks").rglob("*.wav"))[:2]
    for index, path in enumerate(good):
        shutil.copy(path, folder / f"good{index}.wav")
    soundfile.write(folder / "empty.wav", np.zeros(0, np.float32), 16000)
    (folder / "text.wav").write_text("not audio at all")
    soundfile.write(folder / "nan.wav", np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    (folder / "notes.txt").write_text("not an audio suffix: not listed")
    out = tmp_path / "out.jsonl"
    done = subprocess.run([sys.executable, "-m", "effspeech.tools.cli", "predict", "-e", str(trained("ks")),
                           str(folder), str(tmp_path / "missing.wav"), "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert done.returncode == 2
    assert "effspeech predict: error: 4 of 6 files could not be predicted" in done.stderr
    lines = {Path(line["path"]).name: line for line in map(json.loads, out.read_text().splitlines())}
    assert set(lines) == {"empty.wav", "good0.wav", "good1.wav", "nan.wav", "text.wav", "missing.wav"}
    assert lines["good0.wav"]["label"] in CLASSES and lines["good1.wav"]["label"] in CLASSES
    assert lines["empty.wav"]["error"] == "empty: zero samples"
    assert lines["nan.wav"]["error"] == "16000 NaN/inf samples"
    assert lines["text.wav"]["error"].startswith("not readable as audio")
    assert lines["missing.wav"]["error"] == "no such file"


def test_other_rates_and_channels_are_converted_with_a_warning(trained, mini_superb, caplog):
    model = load_task(trained("ks"))
    wave, rate = read(sorted((mini_superb / "ks").rglob("*.wav"))[0])
    assert rate == 16000
    import torchaudio

    stereo_8k = torchaudio.functional.resample(wave, 16000, 8000).repeat(2, 1)
    with caplog.at_level(logging.WARNING):
        converted = model.predict([stereo_8k], sample_rate=8000, scores=True)[0]
    assert "2 channels, averaged to one" in caplog.text and "resampled from 8000 Hz to 16000 Hz" in caplog.text
    expected = model.predict([torchaudio.functional.resample(stereo_8k[0], 8000, 16000)], scores=True)[0]
    assert converted == expected


def test_layouts_and_integer_samples_are_read_as_soundfile_reads_them():
    stereo = np.stack([np.linspace(-0.5, 0.5, 1600), np.zeros(1600)], axis=1).astype(np.float32)  # samples x 2
    assert torch.allclose(prepare(stereo, 16000, []), torch.from_numpy(stereo.mean(axis=1)))
    assert torch.allclose(prepare(stereo.T, 16000, []), torch.from_numpy(stereo.mean(axis=1)))  # channels x samples
    pcm = np.array([-32768, 0, 16384, 32767] * 100, dtype=np.int16)
    assert torch.allclose(prepare(pcm, 16000, []), torch.from_numpy(pcm / 32768.0).float())
    assert torch.equal(prepare(torch.from_numpy(pcm), 16000, []), prepare(pcm, 16000, []))


@pytest.mark.parametrize("method", ["lora", "dora", "ia3", "cnn"])
def test_merging_changes_no_prediction(method, trained, mini_superb):
    files = sorted((mini_superb / "ks").rglob("*.wav"))[:6]
    plain = load_task(trained("ks", method)).predict(waves_of(files), scores=True)
    merged = load_task(trained("ks", method), merge=True).predict(waves_of(files), scores=True)
    assert [p["label"] for p in plain] == [p["label"] for p in merged]
    for a, b in zip(plain, merged):
        assert all(abs(a["scores"][k] - b["scores"][k]) < 1e-4 for k in a["scores"])


def test_a_checkpoint_without_task_info_reads_its_labels_from_the_recipe(trained, mini_superb, tmp_path):
    data = torch.load(trained("ic"), weights_only=False)
    del data["TaskInfo"]
    old = tmp_path / "old.ckpt"
    torch.save(data, old)
    files = sorted((mini_superb / "ic").rglob("*.wav"))[:4]
    assert load_task(old).labels == load_task(trained("ic")).labels
    assert load_task(old).predict(waves_of(files)) == load_task(trained("ic")).predict(waves_of(files))


# ------------------------------------------------------------------------------------ many tasks
def test_many_tasks_on_one_upstream_predict_as_each_does_alone(trained, mini_superb):
    ckpts = {"ks": trained("ks", "houlsby"), "ks2": trained("ks", "houlsby", seed=7), "ic": trained("ic", "lora"),
             "sid": trained("sid", "none"), "er": trained("er", "none")}  # fmt: skip
    files = {"ks": "ks", "ks2": "ks", "ic": "ic", "sid": "sid", "er": "er"}
    waves = {name: waves_of(sorted((mini_superb / folder).rglob("*.wav"))[:4]) for name, folder in files.items()}
    alone = {name: load_task(path).predict(waves[name], scores=True) for name, path in ckpts.items()}

    served = load_tasks(ckpts)
    assert served.tasks == list(ckpts) and sorted(served.adapters.methods) == ["houlsby", "lora"]
    assert not any(part.training for part in served.parts.values())  # every head in eval mode, not just the first
    for name in ["ks", "ic", "ks2", "sid", "ks", "er", "ic"]:  # every switch, both ways, and back
        assert served.predict(waves[name], task=name, scores=True) == alone[name], name
    everything = served.predict(waves["ks"], scores=True)  # sid and er share one upstream forward
    for name in ckpts:
        assert everything[name] == load_task(ckpts[name]).predict(waves["ks"], scores=True), name


def test_a_task_trained_on_another_upstream_is_refused(trained, mini_superb, tmp_path):
    other = make_checkpoint("hubert_tiny", 1, tmp_path / "other.pt")
    elsewhere = train(tmp_path, "ks", mini_superb, str(other))
    with pytest.raises(ConfigError, match="every task must come from the same upstream checkpoint"):
        load_tasks([trained("ic"), elsewhere])


def test_two_tasks_with_one_method_at_different_settings_are_refused(trained, mini_superb, tmp_path):
    state = records.load_state(trained("ic"))
    state.adapter_spec["houlsby"]["bottleneck"] = 7
    changed = tmp_path / "changed.ckpt"
    records.save_state(state, changed)
    with pytest.raises(ConfigError, match="both use houlsby but with different settings"):
        load_tasks({"ks": trained("ks"), "ic": changed})


# ------------------------------------------------------------------------------------------------ SD
def test_speaker_segments_are_the_runs_of_active_frames():
    active = torch.tensor([[0, 1], [1, 1], [1, 0], [0, 0], [1, 0]], dtype=torch.bool)  # frames x speakers
    assert segments(active, 0.02) == [
        {"speaker": 1, "start": 0.0, "end": 0.04},
        {"speaker": 0, "start": 0.02, "end": 0.06},
        {"speaker": 0, "start": 0.08, "end": 0.1},
    ]
    assert rttm_lines("rec", segments(active, 0.02))[0] == "SPEAKER rec 1 0.00 0.04 <NA> <NA> rec_1 <NA> <NA>"


def test_sd_predictions_cover_each_recording_and_write_rttm(trained, mini_superb, tmp_path):
    short = tmp_path / "short.wav"
    soundfile.write(short, np.full(100, 0.1, np.float32), 16000)  # under one frame (320 samples)
    recordings = [*audio_files([mini_superb / "sd"])[:2], short]
    out, rttm = tmp_path / "sd.jsonl", tmp_path / "sd.rttm"
    command = [sys.executable, "-m", "effspeech.tools.cli", "predict", "-e", str(trained("sd")), *map(str, recordings)]
    done = subprocess.run([*command, "--out", str(out), "--rttm", str(rttm)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "1 of 3 files could not be predicted" in done.stderr, done.stderr[-3000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[2]["path"] == str(short) and lines[2]["error"].startswith("100 samples, shorter than one SD frame")
    expected = []
    for path, line in zip(recordings[:2], lines):
        duration = soundfile.info(path).duration
        assert all(0 <= s["start"] < s["end"] <= duration + 1e-6 for s in line["segments"])
        expected += rttm_lines(path.stem, line["segments"])
    assert rttm.read_text().splitlines() == expected
