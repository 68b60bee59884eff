"""``effspeech make-checkpoint``: a random-initialised upstream checkpoint in S3PRL's format (or a
transformers directory), for reports and tests without a download."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--arch",
        required=True,
        help="hubert_base, hubert_tiny, wav2vec2_base, wavlm_tiny, ... (an S3PRL .pt file); hf_hubert_tiny, "
        "hf_wav2vec2_tiny, hf_wavlm_tiny, hf_data2vec_tiny (a transformers save_pretrained directory)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)


def run(args: argparse.Namespace) -> int:
    from effspeech.superb.random_upstream import make_checkpoint
    from effspeech.superb.transformers_upstream import ARCHS, make_transformers_checkpoint

    make = make_transformers_checkpoint if args.arch in ARCHS else make_checkpoint
    print(make(args.arch, args.seed, args.out))
    return 0
