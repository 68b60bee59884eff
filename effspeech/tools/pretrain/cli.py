"""``effspeech pretrain``: HuBERT-style pretraining of a small upstream on Mini-SUPERB train splits."""

from __future__ import annotations

import argparse

from effspeech.tools.pretrain.config import PretrainConfig


def run(args: argparse.Namespace) -> int:
    from effspeech.tools.pretrain.train import pretrain

    options = {name: value for name, value in vars(args).items() if name in PretrainConfig.__dataclass_fields__}
    pretrain(PretrainConfig(**options))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = PretrainConfig(data="", out="")
    parser.add_argument("--data", required=True, help="a Mini-SUPERB root; only its train splits are used (no ER)")
    parser.add_argument("--out", required=True, help="checkpoint path; <stem>.loss.json/.png go next to it")
    parser.add_argument("--arch", default=defaults.arch, help="the architecture to pretrain (hubert_small)")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--device", default=defaults.device, choices=["cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--crop-seconds", type=float, default=defaults.crop_seconds)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--warmup", type=float, default=defaults.warmup, help="fraction of the steps")
    parser.add_argument("--clusters", type=int, default=defaults.clusters, help="MFCC k-means codebook size")
    extra_codebooks = {"pitch": "per-frame log F0 + voicing", "voice": "per-2 s timbre and pitch statistics"}
    for name, features in extra_codebooks.items():
        option = f"{name}_clusters"
        help_text = f"size of an extra codebook of {features} clusters, which keep the speaker (0: none)"
        parser.add_argument(f"--{name}-clusters", type=int, default=getattr(defaults, option), help=help_text)
    parser.add_argument("--threads", type=int, default=defaults.threads, help="torch CPU threads (0: default)")
    parser.add_argument(
        "--feature-grad-mult",
        type=float,
        default=defaults.feature_grad_mult,
        help="gradient scale into the conv extractor (HuBERT Base: 0.1; 0 keeps it at its random init)",
    )
    parser.add_argument("--log-every", type=int, default=defaults.log_every)
    parser.add_argument("--unlabeled", action="append", default=[], help="extra folder of audio, all of it used")
