"""--cache-frozen: the frozen part below every method is computed once per clip, stored, and read back.
A cached run equals an uncached --frozen-eval run bit for bit; the store's keys make a changed input,
checkpoint or cut miss; damaged and half-written entries are recomputed; the size budget holds; several
writers share one store; and --precision / --compile train on CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import effspeech.superb  # noqa: F401  (compatibility shims before s3prl)
from effspeech.frozen import frozen_cut
from effspeech.superb.frozen_store import FrozenStore, input_key, parse_size
from effspeech.superb.random_upstream import make_checkpoint
from effspeech.superb.trainer.main import run
from effspeech.superb.upstream import load_upstream
from effspeech.tools.synth import espeak

REPO = Path(__file__).resolve().parents[1]
needs_espeak = pytest.mark.skipif(not shutil.which(espeak.BINARY), reason="espeak-ng is not installed")


@pytest.mark.parametrize(
    "adapter, cut",
    [(None, "hidden_states"), ("houlsby", "extractor"), ("lora,prompt", "extractor"), ("elp", "extractor"),
     ("cnn", None), ("houlsby,cnn", None), ({"bitfit": {"include_extractor": True}}, None)],
)  # fmt: skip
def test_the_cut_is_below_every_method(adapter, cut, hubert_tiny):
    expert, _ = load_upstream("hubert_adapter", hubert_tiny, adapter)
    if adapter is None:
        expert.requires_grad_(False)
    assert frozen_cut(expert).point == cut


def test_a_fine_tuned_upstream_has_no_frozen_part(hubert_tiny):
    expert, _ = load_upstream("hubert_adapter", hubert_tiny, None)
    expert.requires_grad_(True)
    assert frozen_cut(expert).point is None
    expert, adapters = load_upstream("hubert_adapter", hubert_tiny, "houlsby")
    next(iter(adapters.anatomy.parameters.values())).requires_grad_(True)  # -f with adapters
    assert frozen_cut(expert).point is None


# ------------------------------------------------------------------------------------------- the store
def store(root: Path, **namespace) -> FrozenStore:
    return FrozenStore(root, {"upstream": "u", "cut": "extractor", **namespace})


def test_an_entry_reads_back_exactly_and_memory_mapped(tmp_path):
    value = np.random.default_rng(0).standard_normal((4, 7, 3)).astype(np.float32)
    first = store(tmp_path)
    first.put("ab" * 32, value)
    read = store(tmp_path).get("ab" * 32)
    assert read.dtype == np.float32 and np.array_equal(read, value) and not read.flags.writeable
    half = FrozenStore(tmp_path, {"upstream": "u", "cut": "extractor"}, dtype="fp16")
    assert half.folder != first.folder  # another dtype, another namespace
    half.put("ab" * 32, value)
    assert half.get("ab" * 32).dtype == np.float16


def test_a_changed_input_checkpoint_or_cut_misses(tmp_path):
    samples = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    crop = samples[100:8100]
    assert len({input_key(samples), input_key(crop), input_key(samples[:8000]), input_key(samples * 1.0001)}) == 4
    assert input_key(samples) == input_key(samples.copy())
    stores = [store(tmp_path), store(tmp_path, upstream="v"), store(tmp_path, cut="hidden_states")]
    stores[0].put(input_key(samples), samples[None])
    assert stores[0].get(input_key(samples)) is not None
    assert stores[1].get(input_key(samples)) is None and stores[2].get(input_key(samples)) is None


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_a_damaged_entry_is_recomputed_never_used(damage, tmp_path):
    entries = store(tmp_path)
    key = "cd" * 32
    entries.put(key, np.arange(64, dtype=np.float32))
    path = entries.path(key)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:-9]
    elif damage == "flip":
        data[-5] ^= 0x10
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(b"not a cache entry at all")
    path.write_bytes(bytes(data))
    reader = store(tmp_path)
    assert reader.get(key) is None
    assert reader.stats.corrupt_recomputed == 1 and reader.stats.misses == 1 and not path.exists()
    reader.put(key, np.arange(64, dtype=np.float32))
    assert np.array_equal(store(tmp_path).get(key), np.arange(64, dtype=np.float32))


def test_a_killed_writer_leaves_nothing_that_is_read(tmp_path):
    entries = store(tmp_path)
    key = "ef" * 32
    entries.path(key).parent.mkdir(parents=True, exist_ok=True)
    (entries.path(key).parent / f".{key}.bin.x1y2.tmp").write_bytes(b"EFFCACHE\x00\x01")  # what a kill leaves
    assert entries.get(key) is None and entries.stats.corrupt_recomputed == 0


def test_the_size_budget_holds_and_computing_goes_on(tmp_path):
    entry = np.zeros(1000, dtype=np.float32)  # 4 kB and a header
    entries = FrozenStore(tmp_path, {"upstream": "u"}, size=parse_size("10K"))
    for index in range(5):
        entries.put(f"{index:02d}" + "0" * 62, entry)
    assert entries.stats.entries_written == 2 and entries.stats.full
    used = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert used <= 10 * 1024
    assert parse_size("1.5G") == 3 * 2**29 and parse_size("500MB") == 500 * 2**20 and parse_size(2048) == 2048
    with pytest.raises(effspeech.errors.ConfigError, match="--cache-size 'lots'"):
        parse_size("lots")


WRITER = """
import sys, numpy as np
from effspeech.superb.frozen_store import FrozenStore
entries = FrozenStore(sys.argv[1], {"upstream": "u"})
for round in range(20):
    for index in range(40):  # both writers write the same keys, and one key of their own each round
        entries.put(f"{index:02d}" + "0" * 62, np.full(5000, index, dtype=np.float32))
    entries.put(f"{sys.argv[2]}{round:02d}" + "1" * 60, np.full(10, round, dtype=np.float32))
"""


def test_two_processes_fill_one_store(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), tag], env=env) for tag in ("aa", "bb")]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    entries = store(tmp_path).__class__(tmp_path, {"upstream": "u"})
    for index in range(40):
        assert np.array_equal(entries.get(f"{index:02d}" + "0" * 62), np.full(5000, index, dtype=np.float32))
    for tag in ("aa", "bb"):
        assert all(entries.get(f"{tag}{r:02d}" + "1" * 60)[0] == r for r in range(20))
    assert entries.stats.corrupt_recomputed == 0
    assert not [p for p in tmp_path.rglob("*.tmp")]


# -------------------------------------------------------------------------------------- training runs
STEPS = 6
OPTIONS = ",,".join([
    "config.downstream_expert.datarc.batch_size=4", "config.downstream_expert.datarc.num_workers=0",
    f"config.runner.total_steps={STEPS}", "config.runner.log_step=1", f"config.runner.eval_step={STEPS}",
    f"config.runner.save_step={STEPS}", "config.optimizer.lr=3.0e-3",
])  # fmt: skip


def train(expdir: Path, data: Path, upstream: str, adapter: str, *flags: str) -> tuple[dict, dict]:
    run(["-m", "train", "-u", "hubert_adapter", "-k", upstream, "-d", "ks", "-p", str(expdir), "--adapter", adapter,
         "--data-root", str(data), "--device", "cpu", "-o", OPTIONS, *flags])  # fmt: skip
    report = json.loads((expdir / "results.json").read_text())["train"]
    return report, torch.load(expdir / f"states-{STEPS}.ckpt", map_location="cpu", weights_only=True)


def trained(state: dict) -> dict[str, torch.Tensor]:
    return {**state["Adapter"]["state"], **state["Featurizer"], **state["Downstream"]}


@needs_espeak
@pytest.mark.slow
@pytest.mark.parametrize("adapter, cut", [("houlsby", "extractor"), ("none", "hidden_states")])
def test_a_cached_run_equals_an_uncached_one_exactly(adapter, cut, tmp_path, mini_superb, hubert_tiny):
    """KS (1 s clips), fp32 on CPU: the same losses, weights and test accuracy, cold and warm."""
    cache = tmp_path / "cache"
    reference, reference_state = train(tmp_path / "uncached", mini_superb, hubert_tiny, adapter, "--frozen-eval")
    assert reference["frozen"]["cut"] == cut and "hits" not in reference["frozen"]
    for name in ("cold", "warm"):
        report, state = train(tmp_path / name, mini_superb, hubert_tiny, adapter, "--cache-frozen", str(cache))
        assert report["train_loss"] == reference["train_loss"]
        assert report["metrics"] == reference["metrics"]
        expected = trained(reference_state)
        assert all(torch.equal(value, expected[key]) for key, value in trained(state).items())
        assert report["frozen"]["cut"] == cut
    assert report["frozen"]["misses"] == 0 and report["frozen"]["hits"] > 0  # warm: every clip read back
    run(["-m", "evaluate", "-e", str(tmp_path / "warm" / f"states-{STEPS}.ckpt"), "--cache-frozen", str(cache)])
    evaluated = json.loads((tmp_path / "warm" / "results.json").read_text())["evaluate"]
    assert evaluated["frozen"]["misses"] == 0 and evaluated["metrics"]["test"] == reference["metrics"]["test"]
    plain, _ = train(tmp_path / "plain", mini_superb, hubert_tiny, adapter)
    assert "frozen" not in plain or plain["frozen"] is None


@needs_espeak
@pytest.mark.slow
def test_a_changed_checkpoint_reads_nothing_of_the_old_cache(tmp_path, mini_superb, hubert_tiny):
    cache = tmp_path / "cache"
    train(tmp_path / "first", mini_superb, hubert_tiny, "lora", "--cache-frozen", str(cache))
    other = str(make_checkpoint("hubert_tiny", 1, tmp_path / "other.pt"))
    report, _ = train(tmp_path / "second", mini_superb, other, "lora", "--cache-frozen", str(cache))
    alone, _ = train(tmp_path / "alone", mini_superb, other, "lora", "--cache-frozen", str(tmp_path / "empty"))
    assert report["frozen"]["hits"] == alone["frozen"]["hits"]  # only its own repeats: nothing of the first run
    assert report["frozen"]["misses"] == alone["frozen"]["misses"] > 0
    folders = {p.parent.name for p in cache.glob("*/meta.json")}
    assert len(folders) == 2
    metas = [json.loads(p.read_text()) for p in cache.glob("*/meta.json")]
    assert len({meta["upstream"] for meta in metas}) == 2


@needs_espeak
@pytest.mark.slow
def test_a_checkpoint_trained_batched_ignores_the_cache_and_says_so(tmp_path, mini_superb, hubert_tiny, capsys):
    train(tmp_path / "batched", mini_superb, hubert_tiny, "houlsby")
    run(["-m", "evaluate", "-e", str(tmp_path / "batched" / f"states-{STEPS}.ckpt"), "--cache-frozen", str(tmp_path)])
    assert "--cache-frozen ignored: this checkpoint was trained with the frozen part computed batched" in (
        capsys.readouterr().err
    )
    assert json.loads((tmp_path / "batched" / "results.json").read_text())["evaluate"].get("frozen") is None


@needs_espeak
@pytest.mark.slow
def test_cnn_has_nothing_to_cache_and_says_why(tmp_path, mini_superb, hubert_tiny, capsys):
    report, _ = train(tmp_path / "cnn", mini_superb, hubert_tiny, "cnn", "--cache-frozen", str(tmp_path / "cache"))
    assert report.get("frozen") is None
    assert "nothing cached: cnn acts on the CNN extractor" in capsys.readouterr().err


@needs_espeak
@pytest.mark.slow
def test_ddp_ranks_share_one_cache(tmp_path, mini_superb, hubert_tiny):
    from tests.test_trainer_e2e import free_port

    cache = tmp_path / "cache"
    for name in ("cold", "warm"):
        expdir = tmp_path / name
        command = [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
            str(REPO / "run_downstream.py"), "-m", "train", "-u", "hubert_adapter", "-k", hubert_tiny, "-d", "ks",
            "-p", str(expdir), "--adapter", "houlsby", "--data-root", str(mini_superb), "--device", "cpu",
            "-o", OPTIONS, "--cache-frozen", str(cache),
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-4000:]
        report = json.loads((expdir / "results.json").read_text())["train"]
        first, second = report["trainable_digest_per_rank"]
        assert first == second and report["world_size"] == 2
    assert report["frozen"]["hits"] > 0 and report["frozen"]["corrupt_recomputed"] == 0
    cold = json.loads((tmp_path / "cold" / "results.json").read_text())["train"]
    assert cold["train_loss"] == report["train_loss"]


@needs_espeak
@pytest.mark.slow
@pytest.mark.parametrize("flags", [["--precision", "bf16"], ["--precision", "fp16"], ["--compile"]])
def test_precision_and_compile_train_on_cpu(flags, tmp_path, mini_superb, hubert_tiny):
    import torch._dynamo

    torch._dynamo.reset()
    compiled_before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    report, state = train(tmp_path / "run", mini_superb, hubert_tiny, "houlsby", *flags)
    fp32, _ = train(tmp_path / "fp32", mini_superb, hubert_tiny, "houlsby")
    if flags[0] == "--precision":  # autocast ran: the losses are not fp32's
        assert [e["loss"] for e in report["train_loss"]] != [e["loss"] for e in fp32["train_loss"]]
    else:  # dynamo built graphs; the losses are close, not equal: inductor draws its own dropout masks
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > compiled_before
        losses, eager = [e["loss"] for e in report["train_loss"]], [e["loss"] for e in fp32["train_loss"]]
        assert losses == pytest.approx(eager, rel=0.05)
    assert report["steps"] == STEPS and all(np.isfinite(entry["loss"]) for entry in report["train_loss"])
    assert report["precision"] == (flags[1] if flags[0] == "--precision" else "fp32")
    assert all(value.dtype == torch.float32 for value in state["Adapter"]["state"].values())  # master weights
    if flags == ["--precision", "fp16"]:
        assert state["GradScaler"]["scale"] > 0
