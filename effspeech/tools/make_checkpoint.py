"""``effspeech make-checkpoint``: a random-initialised upstream checkpoint in S3PRL's format, for reports
and tests without a download."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", required=True, help="hubert_base, hubert_tiny, wav2vec2_base, wavlm_tiny, ...")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)


def run(args: argparse.Namespace) -> int:
    from effspeech.superb.random_upstream import make_checkpoint

    print(make_checkpoint(args.arch, args.seed, args.out))
    return 0
