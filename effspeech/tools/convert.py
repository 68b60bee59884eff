"""``effspeech convert --to hf SRC.pt OUT_DIR`` / ``--to s3prl SRC_DIR OUT.pt``: an upstream checkpoint in
the other format (HuBERT, wav2vec 2.0, WavLM), the same hidden states (docs/upstreams.md)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, choices=["hf", "s3prl"], help="the format to write")
    parser.add_argument("source", help="an S3PRL checkpoint file (--to hf) or a save_pretrained directory (--to s3prl)")
    parser.add_argument("out", help="the directory (--to hf) or the file (--to s3prl) to write")


def run(args: argparse.Namespace) -> int:
    from effspeech.superb.convert import to_s3prl, to_transformers

    print((to_transformers if args.to == "hf" else to_s3prl)(args.source, args.out))
    return 0
