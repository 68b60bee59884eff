"""Where an upstream keeps speaker identity: a linear speaker probe on each hidden layer.

For every checkpoint given, each Mini-SUPERB SID utterance (split 1 to train, split 3 to test) is run
through the frozen upstream once; each layer's frames are mean-pooled, standardised with the train
statistics, and a multinomial logistic regression is fitted per layer. It prints test accuracy per layer
(layer 0 is the transformer's input, i.e. the projected conv features). It answers "does pretraining keep
or lose the speaker?" in a minute, without training a downstream. ``--voice-stats`` adds the statistics
that the pretraining's voice codebook clusters, as a reference without any model.

    python benchmarks/speaker_probe.py --data ~/.cache/effspeech/mini-superb/small-seed0 \\
        random=/tmp/lb/hubert_mini_random.pt pretrained=effspeech/assets/hubert_mini.pt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import soundfile
import torch
import torch.nn.functional as F

from effspeech.superb.upstream import load_upstream
from effspeech.tools.pretrain.features import voice

SPLITS = {"train": "1", "test": "3"}


def utterances(root: Path) -> dict[str, list[tuple[Path, str]]]:
    """split -> [(wav, speaker)] from VoxCeleb1's ``iden_split.txt``."""
    voxceleb = root / "sid" / "VoxCeleb1"
    listing = voxceleb / "iden_split.txt"
    if not listing.is_file():
        raise FileNotFoundError(f"not a Mini-SUPERB root (no {listing})")
    wavs = {path.relative_to(path.parents[2]).as_posix(): path for path in voxceleb.glob("*/wav/*/*/*.wav")}
    found = {split: [] for split in SPLITS}
    for line in listing.read_text().splitlines():
        code, relative = line.split()
        for split, wanted in SPLITS.items():
            if code == wanted:
                if relative not in wavs:
                    raise FileNotFoundError(f"{listing}: {relative} is in no {voxceleb}/*/wav folder")
                found[split].append((wavs[relative], relative.split("/")[0]))
    return found


@torch.no_grad()
def pooled_layers(upstream: torch.nn.Module, files: list[Path]) -> torch.Tensor:
    """``(layers, files, dim)``: each layer's frames averaged over time, one utterance at a time."""
    pooled = []
    for path in files:
        wav, rate = soundfile.read(path, dtype="float32")
        if rate != 16000:
            raise ValueError(f"{path}: sample rate {rate}, expected 16000")
        states = upstream([torch.from_numpy(wav)])["hidden_states"]
        pooled.append(torch.stack([state[0].mean(dim=0) for state in states]))
    return torch.stack(pooled, dim=1)


def pooled_voice_stats(files: list[Path]) -> torch.Tensor:
    """``(files, 26)``: the voice codebook's per-2 s statistics, averaged over each utterance."""
    return torch.stack(
        [voice(torch.from_numpy(soundfile.read(path, dtype="float32")[0])).mean(dim=0) for path in files]
    )


def probe_accuracy(train: torch.Tensor, train_y: torch.Tensor, test: torch.Tensor, test_y: torch.Tensor) -> float:
    """Test accuracy of an L2-regularised logistic regression fitted with L-BFGS (deterministic)."""
    mean, std = train.mean(dim=0), train.std(dim=0) + 1e-5
    train, test = (train - mean) / std, (test - mean) / std
    weight = torch.zeros(train.size(1), int(train_y.max()) + 1, requires_grad=True)
    bias = torch.zeros(weight.size(1), requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(train @ weight + bias, train_y) + 1e-3 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return float(((test @ weight + bias).argmax(dim=1) == test_y).float().mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a Mini-SUPERB root (effspeech synth)")
    parser.add_argument("checkpoints", nargs="*", metavar="NAME=CKPT", help="hubert_local checkpoints to probe")
    parser.add_argument(
        "--voice-stats",
        action="store_true",
        help="also probe the pretraining's voice statistics (effspeech.tools.pretrain.features.voice) as one layer",
    )
    args = parser.parse_args(argv)
    if not args.checkpoints and not args.voice_stats:
        parser.error("give at least one NAME=CKPT or --voice-stats")
    split = utterances(args.data)
    speakers = sorted({speaker for _, speaker in split["train"]})
    labels = {name: torch.tensor([speakers.index(speaker) for _, speaker in items]) for name, items in split.items()}
    print(f"{len(split['train'])} train / {len(split['test'])} test utterances, {len(speakers)} speakers")
    rows = {}
    for item in args.checkpoints:
        name, _, ckpt = item.partition("=")
        if not ckpt or not Path(ckpt).is_file():
            parser.error(f"{item!r}: expected NAME=CKPT with an existing checkpoint file")
        started = time.perf_counter()
        upstream = load_upstream("hubert_local", ckpt)[0].eval()
        train, test = (pooled_layers(upstream, [path for path, _ in split[s]]) for s in ("train", "test"))
        rows[name] = [
            probe_accuracy(train[layer], labels["train"], test[layer], labels["test"]) for layer in range(len(train))
        ]
        print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.voice_stats:
        train, test = (pooled_voice_stats([path for path, _ in split[s]]) for s in ("train", "test"))
        rows["voice statistics"] = [probe_accuracy(train, labels["train"], test, labels["test"])]
    layers = max(len(accuracies) for accuracies in rows.values())
    print("| checkpoint | " + " | ".join(f"layer {layer}" for layer in range(layers)) + " |")
    print("|---" * (layers + 1) + "|")
    for name, accuracies in rows.items():
        cells = [f"{100 * value:.1f}" for value in accuracies] + [""] * (layers - len(accuracies))
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
