"""``effspeech export-peft -e CKPT -o DIR``: a trained experiment's adapter as a Hugging Face PEFT directory,
which ``PeftModel.from_pretrained(<transformers model of the upstream>, DIR)`` loads (docs/upstreams.md)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-e", "--past_exp", required=True, help="a checkpoint, or an experiment directory (its best)")
    parser.add_argument("-o", "--out", required=True, help="the PEFT directory to write")


def run(args: argparse.Namespace) -> int:
    from effspeech.errors import ConfigError
    from effspeech.peft_format import save_peft
    from effspeech.superb.inference.task_model import load_checkpoint
    from effspeech.superb.upstream import family_of

    path, state = load_checkpoint(args.past_exp)
    if not state.adapter_spec:
        raise ConfigError(f"{path} trained no adapter (the weighted sum or -f): nothing to export")
    family = family_of(state.args["upstream"])
    print(f"{path} -> {save_peft(state.adapter_spec, state.adapter_state, family, args.out)}")
    return 0
