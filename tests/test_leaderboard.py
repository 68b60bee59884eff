"""effspeech leaderboard: the table from results.json files, and a smoke grid run end to end."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from effspeech.superb import records as records_module
from effspeech.superb.tasks import ALIASES, by_alias
from effspeech.superb.trainer.config import load_config
from effspeech.tools.leaderboard.execute import STATE_FILE, settings, stale_cells
from effspeech.tools.leaderboard.grid import PRESETS, Cell, Launch, auto_rates, build_cells
from effspeech.tools.leaderboard.table import build_rows, write_outputs


def fake_result(
    expdir: Path, task: str, value: float, upstream_trainable: int, split: str = "test", dev: list[float] = ()
) -> None:
    """What run_downstream.py writes after train + evaluate, reduced to what the table reads; ``dev``: the
    dev scores of its evaluations during training."""
    metric = {"asr": "wer", "sd": "der"}.get(task, "acc")
    expdir.mkdir(parents=True, exist_ok=True)
    history = [{"step": 10 * (i + 1), "split": "dev", "metric": metric, "value": v} for i, v in enumerate(dev)]
    results = {
        "trainable_params": {"upstream": upstream_trainable, "featurizer": 3, "downstream": 100},
        "train": {"history": history},
        "evaluate": {"split": split, "metrics": {split: {metric: value, "loss": 1.0}}},
    }
    (expdir / "results.json").write_text(json.dumps(results))


def test_table_reads_each_cells_test_metric_averages_er_folds_and_marks_failures(tmp_path):
    cells = build_cells(["up"], ["finetune", "lora"], ["ks", "er", "asr"], PRESETS["mini"])
    for cell in cells:
        base = {"finetune": 0.8, "lora": 0.6}[cell.method]
        if cell.task == "ks":
            fake_result(cell.expdir(tmp_path), "ks", base, 1000 if cell.method == "finetune" else 10)
        elif cell.task == "er":
            fake_result(cell.expdir(tmp_path), "er", base + cell.fold / 100, 10)
        elif cell.method == "finetune":
            fake_result(cell.expdir(tmp_path), "asr", 20.0, 1000, split="test-clean")  # S3PRL logs WER in %
        else:  # lora's ASR cell crashed
            cell.expdir(tmp_path).mkdir(parents=True)
            (cell.expdir(tmp_path) / "cell.json").write_text(json.dumps({"state": "failed", "returncode": 1}))

    rows = {row.method: row for row in build_rows(cells, tmp_path, {"up": 2000})}
    assert rows["finetune"].scores["er"].value == pytest.approx(0.8 + 0.03)  # mean of folds 1..5
    assert rows["lora"].scores["asr"].status == "failed"
    assert rows["finetune"].scores["asr"].value == pytest.approx(0.2)  # a fraction, like every other metric
    assert rows["lora"].share == pytest.approx(10 / 2000)
    expected = ((0.6 / 0.8) + (0.63 / 0.83)) / 2  # ASR failed: not averaged in
    assert rows["lora"].relative_to_finetune == pytest.approx(expected)
    assert rows["finetune"].relative_to_finetune == pytest.approx(1.0)

    write_outputs(list(rows.values()), ["ks", "er", "asr"], tmp_path)
    with open(tmp_path / "leaderboard.csv") as handle:
        table = list(csv.reader(handle))
    assert table[0] == [
        "upstream",
        "method",
        "trainable upstream params",
        "share of upstream %",
        "KS ACC ↑",
        "ER ACC ↑",
        "ASR WER ↓",
        "rel. to FT",
    ]
    lora = next(line for line in table if line[1] == "lora")
    assert lora[4] == "60.00" and lora[6] == "failed"
    records = json.loads((tmp_path / "leaderboard.json").read_text())
    assert {r["method"]: r["scores"]["asr"]["status"] for r in records} == {"finetune": "done", "lora": "failed"}
    assert "| up | lora | 10 | 0.5000 | 60.00 |" in (tmp_path / "leaderboard.md").read_text()


def test_a_task_where_finetuning_scores_nothing_is_left_out_of_the_relative_score(tmp_path):
    cells = build_cells(["up"], ["finetune", "lora"], ["ks", "asr"], PRESETS["smoke"])
    for cell in cells:
        if cell.task == "ks":
            fake_result(cell.expdir(tmp_path), "ks", {"finetune": 0.8, "lora": 0.4}[cell.method], 10)
        else:  # WER 100 % for both: 1 - WER is 0, no ratio
            fake_result(cell.expdir(tmp_path), "asr", 100.0, 10, split="test-clean")
    rows = {row.method: row for row in build_rows(cells, tmp_path, {"up": 2000})}
    assert rows["lora"].relative_to_finetune == pytest.approx(0.5)
    assert rows["lora"].scores["asr"].value == pytest.approx(1.0)


@pytest.mark.parametrize("preset", ["smoke", "mini", "superb"])
def test_presets_only_override_settings_the_recipes_have(preset):
    """-o creates a key it does not find, so a misspelt preset setting would silently train with the recipe's."""
    for alias in ALIASES:
        task = by_alias(alias)
        config = load_config(task.config_path())
        for option in PRESETS[preset].overrides(task).split(",,"):
            node = config
            for key in option.partition("=")[0].split(".")[1:]:
                assert isinstance(node, dict) and key in node, f"{preset}/{task}: {option} names no recipe setting"
                node = node[key]


def test_mini_preset_updates_once_per_batch_and_evaluates_test_only_on_the_best_dev_checkpoint():
    overrides = {alias: PRESETS["mini"].overrides(by_alias(alias)) for alias in ALIASES}
    assert all("config.runner.gradient_accumulate_steps=1" in text for text in overrides.values())
    assert all("config.runner.eval_dataloaders=['dev']" in overrides[task] for task in ("ks", "ic", "sid", "er"))
    assert "config.downstream_expert.modelrc.RNNs.dim=[256,256]" in overrides["asr"]


def test_a_finished_cell_run_with_other_settings_is_reported_as_stale(tmp_path):
    cell = Cell("up", "lora", "ks")
    launch = Launch(PRESETS["smoke"], {"up": "h.pt"}, "/data")
    fake_result(cell.expdir(tmp_path), "ks", 0.5, 10)
    recorded = settings(launch, cell, cell.expdir(tmp_path))
    (cell.expdir(tmp_path) / STATE_FILE).write_text(json.dumps({"state": "done", "settings": recorded}))
    assert stale_cells([cell], tmp_path, launch) == []
    longer = dataclasses.replace(launch, preset=dataclasses.replace(PRESETS["smoke"], steps=8))
    assert stale_cells([cell], tmp_path, longer) == [cell]


def test_a_checkpoint_replaced_in_place_makes_its_finished_cells_stale(tmp_path):
    checkpoint = tmp_path / "h.pt"
    checkpoint.write_bytes(b"first pretraining")
    cell = Cell("up", "none", "ks")
    launch = Launch(PRESETS["smoke"], {"up": str(checkpoint)}, "/data")
    fake_result(cell.expdir(tmp_path), "ks", 0.5, 10)
    recorded = settings(launch, cell, cell.expdir(tmp_path))
    (cell.expdir(tmp_path) / STATE_FILE).write_text(json.dumps({"state": "done", "settings": recorded}))
    assert stale_cells([cell], tmp_path, launch) == []
    checkpoint.write_bytes(b"second pretraining")
    assert stale_cells([cell], tmp_path, launch) == [cell]


def test_cells_share_the_frozen_cache_and_where_it_lies_changes_no_setting(tmp_path):
    launch = Launch(PRESETS["smoke"], {"up": "h.pt"}, "/data", cache="/c1", cache_size="5G")
    lora, finetune = (launch.train_args(Cell("up", method, "ks"), tmp_path, False) for method in ("lora", "finetune"))
    assert lora[lora.index("--cache-frozen") + 1] == "/c1" and lora[lora.index("--cache-size") + 1] == "5G"
    assert "--cache-frozen" not in finetune  # -f: nothing frozen to cache
    assert launch.evaluate_command(tmp_path / "dev-best.ckpt")[-4:] == ["--cache-frozen", "/c1", "--cache-size", "5G"]
    cell = Cell("up", "lora", "ks")
    fake_result(cell.expdir(tmp_path), "ks", 0.5, 10)
    recorded = settings(launch, cell, cell.expdir(tmp_path))
    (cell.expdir(tmp_path) / STATE_FILE).write_text(json.dumps({"state": "done", "settings": recorded}))
    assert stale_cells([cell], tmp_path, dataclasses.replace(launch, cache="/elsewhere", cache_size=None)) == []
    assert stale_cells([cell], tmp_path, dataclasses.replace(launch, cache=None)) == [cell]  # --no-cache


def test_dry_run_prints_one_line_per_cell_with_the_exact_command(tmp_path):
    launch = Launch(PRESETS["smoke"], {"hubert_adapter": "h.pt"}, "/data", "torchrun", 2)
    cell = Cell("hubert_adapter", "finetune", "er", 3)
    line = launch.shell_line(cell, cell.expdir(tmp_path))
    assert "-m torch.distributed.run --nproc_per_node=2 -m run_downstream -m train" in line
    assert "-d er -p " in line and ",,config.downstream_expert.datarc.test_fold=fold3 " in line
    assert " -f --adapter none --data-root /data" in line
    emotion = load_config(by_alias("er").config_path())
    assert "test_fold" in emotion["downstream_expert"]["datarc"]  # the key the recipe reads its fold from
    assert line.endswith(f"-m evaluate -e {tmp_path}/hubert_adapter/finetune/er/fold3/dev-best.ckpt")


def _leaderboard(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "effspeech.tools.cli",
        "leaderboard",
        "--preset",
        "smoke",
        "--upstreams",
        "hubert_adapter",
        "--out",
        str(out),
        *extra,
    ]


def _children(pid: int) -> list[int]:
    """The live children of ``pid``, read from every process's /proc/<pid>/stat (its 4th field)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # it ended while being read
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and all its descendants; stopped first, so that none starts another meanwhile."""
    os.kill(pid, signal.SIGSTOP)
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for parent in frontier for child in _children(parent)]
        for child in frontier:
            _signal(child, signal.SIGSTOP)
        tree += frontier
    for member in tree:
        _signal(member, signal.SIGKILL)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:  # it ended on its own meanwhile
        pass


@pytest.mark.slow
def test_smoke_grid_survives_a_kill_and_reports_from_results_json(tmp_path, mini_superb, hubert_tiny):
    out = tmp_path / "grid"
    command = _leaderboard(
        out,
        "--methods",
        "none,houlsby",
        "--tasks",
        "ks,ic",
        "--data-root",
        str(mini_superb),
        "--ckpt",
        f"hubert_adapter={hubert_tiny}",
    )
    first_cell = out / "hubert_adapter/none/ks/results.json"
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and "evaluate" not in (first_cell.read_text() if first_cell.is_file() else ""):
        time.sleep(1)
    _kill_tree(process.pid)  # the grid and its cells (each in a session of its own), as a job's end kills them
    process.wait()
    finished_before = first_cell.read_text()

    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert first_cell.read_text() == finished_before  # the finished cell was not redone
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.json", "pareto.png"):
        assert (out / name).stat().st_size > 0
    records = {r["method"]: r for r in json.loads((out / "leaderboard.json").read_text())}
    for method in ("none", "houlsby"):
        for task in ("ks", "ic"):
            cell = json.loads((out / f"hubert_adapter/{method}/{task}/results.json").read_text())
            split = cell["evaluate"]["split"]
            assert records[method]["scores"][task]["value"] == cell["evaluate"]["metrics"][split]["acc"]
    assert records["none"]["trainable_upstream_params"] == 0
    recorded = json.loads((out / "hubert_adapter/none/ks/cell.json").read_text())["settings"]
    assert recorded[:2] == ["-m", "train"] and "ks" in recorded  # what a rerun compares to find stale cells
    assert records["houlsby"]["trainable_upstream_params"] > 0
    digest = records_module.file_digest(hubert_tiny)
    assert records["none"]["upstream_sha256"] == records["houlsby"]["upstream_sha256"] == [digest]
    assert "done=4" in result.stdout


def test_a_failed_cell_is_reported_and_the_command_exits_non_zero(tmp_path, mini_superb):
    out = tmp_path / "grid"
    command = _leaderboard(
        out,
        "--methods",
        "lora",
        "--tasks",
        "ks",
        "--data-root",
        str(mini_superb),
        "--ckpt",
        f"hubert_adapter={tmp_path / 'missing.pt'}",
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "| hubert_adapter | lora |" in (out / "leaderboard.md").read_text()
    assert "failed" in (out / "leaderboard.md").read_text()
    assert "upstream checkpoint not found" in (out / "hubert_adapter/lora/ks/cell.log").read_text()


def test_methods_all_means_every_registered_method_in_a_stable_order():
    from effspeech.methods import BUILT_IN
    from effspeech.superb.methods import all_methods, expand_all

    methods = all_methods()
    assert methods[:2] == ["none", "finetune"] and methods[2 : 2 + len(BUILT_IN)] == list(BUILT_IN)
    assert "ffn_scale" in methods[2 + len(BUILT_IN) :]  # the example plugin, after the built-ins
    assert expand_all(["lora", "all"]) == ["lora", *[m for m in methods if m != "lora"]]
    cells = build_cells(["up"], expand_all(["all"]), ["ks"], PRESETS["smoke"])
    assert [cell.method for cell in cells] == methods


def test_a_preset_rate_goes_to_its_method_only(tmp_path):
    preset = dataclasses.replace(PRESETS["mini"], method_rates={"dora": 3e-3})
    launch = Launch(preset, {"up": "h.pt"}, "/data")
    dora, lora = (launch.train_args(Cell("up", method, "ks"), tmp_path, False) for method in ("dora", "lora"))
    assert dora[dora.index("-o") + 1].endswith(",,config.adapter.dora.lr=0.003")
    assert "config.adapter." not in lora[lora.index("-o") + 1].replace("config.adapter.finetune.lr", "")


def test_seeds_and_rates_make_one_cell_each_with_its_own_seed_and_rate(tmp_path):
    cells = build_cells(["up"], ["none", "lora"], ["ks"], PRESETS["smoke"], lrs=[1e-3, 1e-2], seeds=[7, 8])
    assert [cell.name for cell in cells] == [
        "up/none/ks/seed7", "up/none/ks/seed8",  # the weighted sum trains no upstream tensor: no rates
        "up/lora/ks/lr0.001/seed7", "up/lora/ks/lr0.001/seed8", "up/lora/ks/lr0.01/seed7", "up/lora/ks/lr0.01/seed8",
    ]  # fmt: skip
    args = Launch(PRESETS["smoke"], {"up": "h.pt"}, "/data").train_args(cells[-1], tmp_path, False)
    assert args[args.index("--seed") + 1] == "8"
    assert args[args.index("-o") + 1].endswith(",,config.adapter.lora.lr=0.01")
    assert [cell.name for cell in build_cells(["up"], ["lora"], ["ks"], PRESETS["smoke"])] == ["up/lora/ks"]


def test_lrs_auto_sweeps_half_a_decade_around_each_methods_own_rate():
    preset = dataclasses.replace(PRESETS["mini"], method_rates={"ia3": 3e-2})
    cells = build_cells(["up"], ["none", "houlsby", "ia3", "finetune"], ["ks"], preset, lrs="auto")
    rates = {method: [cell.lr for cell in cells if cell.method == method] for method in ("none", "houlsby", "ia3")}
    assert rates == {"none": [None], "houlsby": [3e-4, 1e-3, 3e-3], "ia3": [1e-2, 3e-2, 1e-1]}
    assert [cell.lr for cell in cells if cell.method == "finetune"] == [3e-5, 1e-4, 3e-4]  # the CPU presets' 1e-4
    assert auto_rates(2.5e-2) == [1e-2, 3e-2, 1e-1]


def test_the_rate_is_chosen_on_dev_and_the_test_metric_reported_as_mean_and_std_over_seeds(tmp_path):
    cells = build_cells(["up"], ["lora"], ["ks", "er"], PRESETS["mini"], lrs=[1e-3, 1e-2], seeds=[1, 2, 3])
    test = {1e-3: [0.50, 0.60, 0.70], 1e-2: [0.90, 0.95, 0.99]}  # 1e-2 is better on test ...
    dev = {1e-3: [0.6, 0.7, 0.8], 1e-2: [0.3, 0.4, 0.5]}  # ... but 1e-3 on dev: the table takes 1e-3
    for cell in cells:
        k = cell.seed - 1
        fold = (cell.fold or 0) / 100  # ER: fold f adds f points, so the fold mean adds 3
        fake_result(cell.expdir(tmp_path), cell.task, test[cell.lr][k] + fold, 10, dev=[0.1, dev[cell.lr][k] + fold])
    (row,) = build_rows(cells, tmp_path, {"up": 1000})
    ks, er = row.scores["ks"], row.scores["er"]
    assert ks.lr == er.lr == 1e-3 and ks.n == 3
    assert ks.value == pytest.approx(0.60) and ks.std == pytest.approx(0.10)
    assert er.value == pytest.approx(0.63) and er.std == pytest.approx(0.10)
    assert len(ks.runs) == 6 and [run["dev"] for run in ks.runs if run["lr"] == 1e-2] == pytest.approx([0.3, 0.4, 0.5])
    assert ks.text() == "60.00 ± 10.00 (3) @0.001"
    write_outputs([row], ["ks", "er"], tmp_path)
    with open(tmp_path / "leaderboard_runs.csv") as handle:
        assert len(list(csv.reader(handle))) == 1 + 2 * 6  # every run of both tasks
    saved = json.loads((tmp_path / "leaderboard.json").read_text())[0]["scores"]["ks"]
    assert saved["lr"] == 1e-3 and saved["n"] == 3 and len(saved["runs"]) == 6


def test_rel_to_ft_carries_its_standard_error_from_both_seed_spreads(tmp_path):
    cells = build_cells(["up"], ["lora", "finetune"], ["ks", "asr"], PRESETS["mini"], seeds=[1, 2])
    scores = {("lora", "ks"): [0.4, 0.6], ("finetune", "ks"): [0.7, 0.9], ("lora", "asr"): [50, 70],
              ("finetune", "asr"): [20, 40]}  # fmt: skip
    for cell in cells:
        fake_result(cell.expdir(tmp_path), cell.task, scores[cell.method, cell.task][cell.seed - 1], 10, dev=[0.5])
    rows = {row.method: row for row in build_rows(cells, tmp_path, {"up": 1000})}
    std = math.sqrt(0.02)  # of two values 0.2 apart
    ks = 0.5 / 0.8 * math.hypot(std / math.sqrt(2) / 0.5, std / math.sqrt(2) / 0.8)
    asr = 0.4 / 0.7 * math.hypot(std / math.sqrt(2) / 0.4, std / math.sqrt(2) / 0.7)  # WER in % as 1 - WER
    assert rows["lora"].relative_to_finetune == pytest.approx((0.5 / 0.8 + 0.4 / 0.7) / 2)
    assert rows["lora"].relative_se == pytest.approx(math.hypot(ks, asr) / 2)
    write_outputs(list(rows.values()), ["ks", "asr"], tmp_path)
    assert (
        f"{rows['lora'].relative_to_finetune:.3f} ± {rows['lora'].relative_se:.3f} |"
        in (tmp_path / "leaderboard.md").read_text()
    )


@pytest.mark.slow
def test_a_smoke_grid_with_two_seeds_shows_the_spread(tmp_path, mini_superb, hubert_tiny):
    out = tmp_path / "grid"
    command = _leaderboard(out, "--methods", "lora", "--tasks", "ks", "--seeds", "2", "--data-root", str(mini_superb),
                           "--ckpt", f"hubert_adapter={hubert_tiny}")  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (score,) = [json.loads((out / "leaderboard.json").read_text())[0]["scores"]["ks"]]
    assert score["n"] == 2 and score["std"] is not None and [run["seed"] for run in score["runs"]] == [1337, 1338]
    assert " ± " in (out / "leaderboard.md").read_text() and "(2)" in (out / "leaderboard.md").read_text()


def _shipped_digest() -> str:
    from effspeech.superb.upstream import offline_checkpoint

    return records_module.file_digest(offline_checkpoint("hubert_mini_adapter"))


def test_docs_leaderboard_names_no_checkpoint_but_the_shipped_one():
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "leaderboard.md").read_text()
    shipped = _shipped_digest()
    assert set(re.findall(r"\b[0-9a-f]{64}\b", text)) == {shipped}
    for head, tail in re.findall(r"\b([0-9a-f]{8,63})\.\.\.([0-9a-f]*)", text):  # abbreviated: f6eb5594...a699
        assert shipped.startswith(head) and shipped.endswith(tail), f"docs/leaderboard.md names {head}...{tail}"


def test_the_shipped_table_was_measured_on_the_shipped_checkpoint():
    from effspeech.tools.leaderboard.table import SHIPPED

    rows = json.loads(SHIPPED.read_text())
    assert {row["method"] for row in rows} >= {"none", "finetune"}
    assert all(row["upstream_sha256"] == [_shipped_digest()] for row in rows)
