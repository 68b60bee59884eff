"""Rerun the shipped hubert_mini's pretraining and compare the result with the shipped checkpoint.

The shipped file records its own settings (``pretrain.config``); this reruns them with only ``--data`` and
``--out`` replaced, then reports whether the weights are bit-identical (expected for the same torch version
and thread count) and how the final losses and masked accuracies compare.

    effspeech synth --preset small --seed 0 --out /tmp/mini-small --jobs 2
    python benchmarks/reproduce_hubert_mini.py --data /tmp/mini-small --out /tmp/rerun/hubert_mini.pt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from effspeech.superb.embedded import embedded_file
from effspeech.tools.pretrain.config import PretrainConfig
from effspeech.tools.pretrain.train import pretrain


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def compare(shipped: dict, rerun: dict) -> dict:
    names = shipped["model_weight"].keys()
    identical = [torch.equal(shipped["model_weight"][name], rerun["model_weight"][name]) for name in names]
    largest = max(
        (shipped["model_weight"][name].float() - rerun["model_weight"][name].float()).abs().max().item()
        for name in names
    )
    return {"tensors": len(identical), "bit_identical": sum(identical), "max_abs_difference": largest}


def last_record(path: Path) -> dict:
    return json.loads(path.with_suffix(".loss.json").read_text())[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="Mini-SUPERB small, seed 0 (the shipped run's data)")
    parser.add_argument("--out", required=True, type=Path, help="where the rerun's checkpoint goes")
    args = parser.parse_args()
    shipped_path = embedded_file("hubert_mini")
    shipped = load(shipped_path)
    settings = {**shipped["pretrain"]["config"], "data": args.data, "out": str(args.out)}
    print(f"rerunning {shipped_path.name}: {settings}")
    pretrain(PretrainConfig(**settings))
    report = compare(shipped, load(args.out))
    for name, path in (("shipped", shipped_path), ("rerun", args.out)):
        record = last_record(path)
        print(f"{name}: final loss {record['loss']:.4f}, masked accuracy {record['accuracy']:.4f}")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
