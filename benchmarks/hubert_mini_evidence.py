"""The model card's evidence for the shipped hubert_mini, from the mini leaderboard.

Runs (or reuses: finished cells are skipped) the cells it needs of the ``mini`` grid in OUT/mini (weighted
sum, fine-tuning, houlsby and lora on KS, IC, SID and ER) and the weighted-sum cells of a randomly
initialised hubert_mini in OUT/random, then prints how far pretraining lifts the weighted sum and how close
houlsby and lora come to fine-tuning. OUT/mini can be the full grid's directory; its leaderboard files then
hold this subset until the full ``effspeech leaderboard --preset mini --out OUT/mini`` runs again.

    python benchmarks/hubert_mini_evidence.py --out lb/ --jobs 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

UPSTREAM = "hubert_mini_adapter"
TASKS = ("ks", "ic", "sid", "er")
ADAPTERS = ("houlsby", "lora")


def effspeech(*args: str) -> int:
    return subprocess.call([sys.executable, "-m", "effspeech.tools.cli", *args])


def scores(board: Path) -> dict[str, dict]:
    """method -> its leaderboard.json record."""
    return {record["method"]: record for record in json.loads(board.read_text()) if record["upstream"] == UPSTREAM}


def percent(record: dict, task: str) -> float | None:
    value = record["scores"].get(task, {}).get("value")
    return None if value is None else 100 * value


def text(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def evidence_table(pretrained: dict[str, dict], random: dict[str, dict]) -> str:
    header = ["task", "WS random", "WS pretrained", "pretraining lift", "FT"]
    for name in ADAPTERS:
        share = pretrained[name]["share_of_upstream"]
        header += [f"{name} ({100 * share:.2f} %)", f"{name} - FT"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for task in TASKS:
        ws_random, ws = percent(random["none"], task), percent(pretrained["none"], task)
        finetune = percent(pretrained["finetune"], task)
        cells = [task.upper(), text(ws_random), text(ws), text(difference(ws, ws_random), True), text(finetune)]
        for name in ADAPTERS:
            score = percent(pretrained[name], task)
            cells += [text(score), text(difference(score, finetune), True)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="holds mini/ (the full grid) and random/")
    parser.add_argument("--jobs", default="2")
    args = parser.parse_args()
    random_ckpt = args.out / "hubert_mini_random.pt"
    methods, tasks = ",".join(("none", "finetune", *ADAPTERS)), ",".join(TASKS)
    codes = [
        effspeech(
            "leaderboard", "--preset", "mini", "--methods", methods, "--tasks", tasks,
            "--out", str(args.out / "mini"), "--jobs", args.jobs,
        )
    ]  # fmt: skip
    if not random_ckpt.is_file():
        codes.append(effspeech("make-checkpoint", "--arch", "hubert_mini", "--seed", "0", "--out", str(random_ckpt)))
    codes.append(
        effspeech(
            "leaderboard", "--preset", "mini", "--methods", "none", "--tasks", tasks,
            "--ckpt", f"{UPSTREAM}={random_ckpt}", "--out", str(args.out / "random"), "--jobs", args.jobs,
        )
    )  # fmt: skip
    pretrained = scores(args.out / "mini" / "leaderboard.json")
    random = scores(args.out / "random" / "leaderboard.json")
    print("\nTest accuracy % on Mini-SUPERB small (ER: mean of 5 folds); WS = weighted sum (`none`).")
    print(evidence_table(pretrained, random))
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
