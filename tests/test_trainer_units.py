"""The trainer's parts without training: flags, overrides, adapter plan, checkpoints, data order, results."""

from __future__ import annotations

import json
import random
from argparse import Namespace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

import effspeech.superb  # noqa: F401  (compatibility shims before s3prl)
from effspeech.methods import BUILT_IN
from effspeech.superb import records
from effspeech.superb.tasks import ALIASES, TASKS, resolve_task
from effspeech.superb.trainer.args import parse_args
from effspeech.superb.trainer.config import adapter_plan, apply_overrides, finetune_lr, load_config
from effspeech.superb.trainer.experiment import _merge_args
from effspeech.superb.trainer.metrics import MetricTap
from effspeech.superb.trainer.pipeline import param_groups
from effspeech.superb.trainer.rng import rng_state, set_rng_state
from effspeech.superb.trainer.sampling import epoch_loader
from effspeech.tools.cli import main as cli


def test_overrides_follow_s3prl_syntax():
    args, config = Namespace(seed=1), {"runner": {"total_steps": 200000}}
    applied = apply_overrides(
        "config.runner.total_steps=10,,args.seed=7,,config.adapter.lora.rank=16,,"
        "config.downstream_expert.datarc.root=/data/a=b,,config.runner.eval_dataloaders=['dev', 'test']",
        args,
        config,
    )
    assert len(applied) == 5 and args.seed == 7
    assert config["runner"] == {"total_steps": 10, "eval_dataloaders": ["dev", "test"]}
    assert config["adapter"]["lora"]["rank"] == 16
    assert config["downstream_expert"]["datarc"]["root"] == "/data/a=b"  # split at the first '=' only
    assert apply_overrides(None, args, config) == [] and apply_overrides("none", args, config) == []
    with pytest.raises(ValueError, match="no '='"):
        apply_overrides("config.runner.total_steps", args, config)
    with pytest.raises(ValueError, match="config.<path> or args.<name>"):
        apply_overrides("runner.total_steps=1", args, config)


def test_adapter_plan_takes_hyperparameters_and_rates_from_the_config():
    config = {"adapter": {"lora": {"lr": 2e-3, "rank": 16}, "houlsby": {"lr": 1e-3}, "finetune": {"lr": 1e-5}}}
    spec, rates = adapter_plan("houlsby,lora", config)
    assert spec == {"houlsby": {}, "lora": {"rank": 16}}
    assert rates == {"houlsby": 1e-3, "lora": 2e-3}
    assert config["adapter"]["lora"] == {"lr": 2e-3, "rank": 16}  # the saved config keeps the rate
    assert adapter_plan("none", config) == ({}, {})
    assert finetune_lr(config) == 1e-5 and finetune_lr({}) is None


@pytest.mark.parametrize("task", sorted(TASKS))
def test_shipped_configs_are_superb_settings(task):
    config = load_config(TASKS[task].config_path())
    steps = {"asr": 200000, "voxceleb1": 200000, "speech_commands": 200000, "fluent_commands": 200000}
    assert config["runner"]["total_steps"] == steps.get(task, 30000)
    assert config["optimizer"] == {"name": "TorchOptim", "torch_optim_name": "Adam", "lr": 1.0e-4}
    assert config["runner"]["gradient_accumulate_steps"] == {"voxceleb1": 4, "emotion": 8, "diarization": 4}.get(
        task, 1
    )
    methods = set(BUILT_IN)  # every built-in has a rate (plugins train at optimizer.lr)
    assert methods | {"finetune"} == set(config["adapter"])
    assert all(entry["lr"] > config["adapter"]["finetune"]["lr"] for name, entry in config["adapter"].items()
               if name != "finetune")  # fmt: skip
    spec, _ = adapter_plan(",".join(sorted(methods)), config)
    assert all(settings == {} for settings in spec.values())  # only rates in the shipped section


def test_task_aliases_and_s3prl_names():
    assert {alias: resolve_task(alias) for alias in ALIASES} == {
        "asr": "asr", "sid": "voxceleb1", "ks": "speech_commands",
        "ic": "fluent_commands", "er": "emotion", "sd": "diarization",
    }  # fmt: skip
    assert resolve_task("speech_commands") == "speech_commands"
    assert resolve_task("voxceleb2_ge2e") == "voxceleb2_ge2e"  # any S3PRL recipe
    with pytest.raises(ValueError, match="unknown downstream"):
        resolve_task("nope")


def test_data_root_fills_every_tasks_keys(tmp_path):
    for task in TASKS.values():
        config = {"downstream_expert": {"datarc": {"keep": 1}}}
        filled = task.fill_data_paths(config, tmp_path)
        assert len(filled) == len(task.data_keys) and all(value.startswith(str(tmp_path)) for value in filled.values())
        assert config["downstream_expert"]["datarc"]["keep"] == 1


def test_device_defaults_to_what_is_available():
    args = parse_args(["-m", "train"])
    assert args.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert args.adapter == "none" and args.upstream_trainable is False


def test_resumed_args_keep_runtime_flags_and_the_checkpoint_directory(tmp_path):
    saved = {"mode": "train", "downstream": "speech_commands", "expdir": "/old/place", "expname": "x", "seed": 3}
    current = parse_args(["-m", "evaluate", "-e", "ckpt", "--device", "cpu"])
    merged = _merge_args(saved, current, {"mode", "past_exp", "device"}, default_expdir=tmp_path)
    assert (merged.mode, merged.device, merged.seed) == ("evaluate", "cpu", 3)
    assert merged.expdir == str(tmp_path)  # moved experiments resume in place
    current = parse_args(["-m", "train", "-e", "ckpt", "-p", str(tmp_path / "new")])
    merged = _merge_args(saved, current, {"mode", "past_exp", "expdir"}, default_expdir=tmp_path)
    assert merged.expdir == str(tmp_path / "new")


def _state(step: int, **fields) -> records.TrainingState:
    parts = {"adapter_spec": {}, "adapter_state": {}, "featurizer": {}, "downstream": {}}
    return records.TrainingState(step, {"downstream": "speech_commands"}, {}, **{**parts, **fields})


def test_atomic_save_keeps_the_previous_checkpoint_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "states-1.ckpt"
    records.save_state(_state(1, featurizer={"w": torch.ones(3)}), path)

    def broken_save(obj, file):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        records.save_state(_state(2), path)
    assert records.load_state(path).step == 1
    assert [p.name for p in tmp_path.iterdir()] == ["states-1.ckpt"]  # no temp file left behind


def test_checkpoints_keep_the_keys_of_the_first_release(tmp_path):
    """Experiment directories written before the records module must still load and resume."""
    old = {
        "Step": 4, "Epoch": 1, "BatchInEpoch": 3, "WallTime": 2.5, "Args": {"downstream": "ks"}, "Config": {},
        "Adapter": {"spec": {"lora": {}}, "state": {"lora.0.q.A": torch.ones(2)}}, "Featurizer": {},
        "Downstream": {}, "Optimizer": {"state": {}}, "RNG": [{"torch": torch.ones(1)}], "WorldSize": 1,
    }  # fmt: skip
    torch.save(old, tmp_path / "states-4.ckpt")
    state = records.load_state(tmp_path / "states-4.ckpt")
    assert (state.step, state.epoch, state.batch_in_epoch, state.wall_time, state.nonfinite_steps) == (4, 1, 3, 2.5, 0)
    assert state.adapter_spec == {"lora": {}} and state.upstream is None and state.scheduler is None
    records.save_state(state, tmp_path / "again.ckpt")
    again = torch.load(tmp_path / "again.ckpt", weights_only=True)
    assert set(again) == set(old) | {"NonfiniteSteps"}
    assert torch.equal(again["Adapter"]["state"]["lora.0.q.A"], old["Adapter"]["state"]["lora.0.q.A"])


def test_a_file_that_is_no_checkpoint_is_named_with_what_it_lacks(tmp_path):
    torch.save({"Step": 1, "Args": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match=r"other.ckpt is not an effspeech checkpoint: it has no Config, Adapter"):
        records.load_state(tmp_path / "other.ckpt")
    records.save_state(_state(3), tmp_path / "dev-best.ckpt")
    with pytest.raises(ValueError, match=r"dev-best.ckpt cannot be resumed: it has no Optimizer, RNG"):
        records.load_state(tmp_path / "dev-best.ckpt").require_resumable(tmp_path / "dev-best.ckpt")


def test_checkpoint_lookup_and_pruning(tmp_path):
    for step in (10, 2, 30):
        records.save_state(_state(step), tmp_path / records.states_name(step))
    assert records.resolve_checkpoint(tmp_path).name == "states-30.ckpt"
    assert records.best_checkpoint(tmp_path, "dev-best.ckpt").name == "states-30.ckpt"  # no best-dev one saved
    records.save_state(_state(20), tmp_path / "dev-best.ckpt")
    assert records.best_checkpoint(tmp_path, "dev-best.ckpt").name == "dev-best.ckpt"
    records.prune_states(tmp_path, max_keep=2)
    assert [p.name for p in records.states_checkpoints(tmp_path)] == ["states-10.ckpt", "states-30.ckpt"]
    with pytest.raises(FileNotFoundError):
        records.resolve_checkpoint(tmp_path / "missing.ckpt")


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    records.save_state(_state(1, rng=[rng_state()]), tmp_path / "rng.ckpt")
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(2), np.random.seed(2), torch.manual_seed(2)
    set_rng_state(records.load_state(tmp_path / "rng.ckpt").rng[0])  # weights_only=True
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected


def _indices(loader: DataLoader) -> list[int]:
    return [int(i) for batch in loader for i in batch]


def test_epoch_order_is_seeded_per_epoch_and_skips_without_loading():
    loader = DataLoader(list(range(20)), batch_size=3, shuffle=True)
    first = _indices(epoch_loader(loader, seed=5, epoch=0))
    torch.manual_seed(123)  # the global RNG does not matter
    assert _indices(epoch_loader(loader, seed=5, epoch=0)) == first
    assert _indices(epoch_loader(loader, seed=5, epoch=1)) != first
    assert _indices(epoch_loader(loader, seed=5, epoch=0, skip_batches=2)) == first[6:]


def test_epoch_order_shards_the_same_permutation_on_every_rank():
    dataset = list(range(10))
    shards = [
        _indices(epoch_loader(DataLoader(dataset, batch_size=1, sampler=sampler), seed=0, epoch=3))
        for sampler in (DistributedSampler(dataset, num_replicas=2, rank=r) for r in (0, 1))
    ]
    assert sorted(shards[0] + shards[1]) == dataset


def test_param_groups_give_each_method_its_rate():
    head, featurizer = nn.Linear(2, 2), nn.Linear(2, 1)
    upstream = nn.Module()
    upstream.frozen, upstream.adapter, upstream.open = nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2)
    upstream.frozen.requires_grad_(False)
    adapters = SimpleNamespace(
        named_parameters=lambda: [(f"houlsby.{n}", p) for n, p in upstream.adapter.named_parameters()]
    )
    pipeline = SimpleNamespace(upstream=upstream, featurizer=featurizer, downstream=head)
    groups = param_groups(pipeline, adapters, base_lr=1e-4, rates={"houlsby": 1e-3}, finetune_lr=1e-5)
    assert [(g["name"], g["lr"], len(g["params"])) for g in groups] == [
        ("head", 1e-4, 4), ("houlsby", 1e-3, 2), ("finetune", 1e-5, 2),
    ]  # fmt: skip


def test_results_capture_what_log_records_writes(tmp_path, capsys):
    tap = MetricTap(None)
    tap.add_scalar("asr/dev-clean-wer", 12.5, global_step=4)
    tap.add_scalar("emotion-fold1/test-acc", 0.5, global_step=4)
    tap.add_scalar("fluent_commands/test-intent_loss", 0.1, global_step=4)
    tap.add_scalar("speech_commands/train-acc", 0.9, global_step=4)  # training records are not results
    assert tap.latest() == {"dev-clean": {"wer": 12.5}, "test": {"acc": 0.5, "intent_loss": 0.1}}
    run = records.RunInfo("emotion", "er", "hubert_adapter", None, {}, False, {"total": 1}, str(tmp_path))
    for fold, acc in (("f1", 0.5), ("f2", 0.7)):
        (tmp_path / fold).mkdir()
        train = records.TrainRecord(4, 4, None, 1.0, 1, {"test": {"acc": acc}}, [], [], [], 0, {})
        records.write_results(tmp_path / fold, train, run)
    evaluated = records.EvaluateRecord("dev-best.ckpt", 4, "test", 1.0, {"test": {"acc": 0.6}}, {})
    records.write_results(tmp_path / "f1", evaluated, run)
    merged = json.loads((tmp_path / "f1" / "results.json").read_text())
    assert merged["metrics"] == {"test": {"acc": 0.6}} and merged["train"]["metrics"]["test"]["acc"] == 0.5
    average = records.average_results([tmp_path / "f1", tmp_path / "f2"])
    assert average["metrics"] == {"test": {"acc": pytest.approx(0.65)}}
    assert cli(["average", str(tmp_path / "f1"), str(tmp_path / "f2"), "--out", str(tmp_path / "er.json")]) == 0
    assert json.loads((tmp_path / "er.json").read_text())["metrics"]["test"]["acc"] == pytest.approx(0.65)
    assert cli(["average", str(tmp_path / "f1"), str(tmp_path / "f3")]) == 2
    assert "f3/results.json does not exist" in capsys.readouterr().err
