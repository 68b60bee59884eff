"""Command-line flags: S3PRL's ``run_downstream.py`` flags with their meanings, plus ``--adapter`` and
``--data-root``. Kept apart from the runner so the CLI, the tests and checkpoints share one definition."""

from __future__ import annotations

import argparse

import torch

# Flags whose value on the command line wins over the one stored in a checkpoint (S3PRL's list, plus
# the effspeech flags that only say where/how this process runs).
RUNTIME_ONLY = (
    "mode",
    "evaluate_split",
    "override",
    "backend",
    "local_rank",
    "past_exp",
    "device",
    "auto_resume",
    "data_root",
    "debug",
    "cache_frozen",
    "cache_dtype",
    "cache_size",
    "compile",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_downstream.py",
        description="Train/evaluate an S3PRL downstream task on a (frozen, adapter-tuned or fine-tuned) SSL upstream.",
    )
    parser.add_argument("-m", "--mode", choices=["train", "evaluate"], required=True)
    parser.add_argument("-t", "--evaluate_split", help="split for -m evaluate (default: the task's test split)")
    parser.add_argument("-o", "--override", help="'config.a.b=v,,args.c=w': highest-priority overrides")
    parser.add_argument("--backend", help="torch.distributed backend (default: nccl on GPU, gloo on CPU)")
    parser.add_argument("--local_rank", type=int, help="set by torchrun through LOCAL_RANK; kept for S3PRL scripts")
    parser.add_argument("-e", "--past_exp", metavar="{CKPT_PATH,CKPT_DIR}", help="resume (train) / load (evaluate)")
    parser.add_argument("-i", "--init_ckpt", metavar="CKPT_PATH", help="load weights only, keep this run's args")
    parser.add_argument("-c", "--config", help="task config yaml (default: downstream/<task>/config.yaml)")
    parser.add_argument("-d", "--downstream", help="task: asr, sid, ks, ic, er, sd or an S3PRL downstream name")
    parser.add_argument("-v", "--downstream_variant", help="variant given the same expert (emotion: the test fold)")
    parser.add_argument("-u", "--upstream", help="an effspeech entry (hubert_adapter, ...) or any s3prl.hub name")
    parser.add_argument("-k", "--upstream_ckpt", metavar="{PATH,URL}", help="upstream checkpoint")
    parser.add_argument("-g", "--upstream_model_config", help="upstream model config, for upstreams that need one")
    parser.add_argument("-r", "--upstream_refresh", action="store_true", help="re-download cached upstream files")
    parser.add_argument("-f", "--upstream_trainable", action="store_true", help="fine-tune the whole upstream")
    parser.add_argument("-s", "--upstream_feature_selection", default="hidden_states", help="feature key to use")
    parser.add_argument("-l", "--upstream_layer_selection", type=int, help="use only this layer of the -s features")
    parser.add_argument("--upstream_feature_normalize", action="store_true", help="layer-norm before weighted sum")
    parser.add_argument(
        "--adapter",
        default="none",
        help="efficient-tuning methods injected into the frozen upstream: a registered method or a comma list "
        "(e.g. houlsby, lora, houlsby,cnn; docs/adapters.md); 'none' = the weighted-sum baseline",
    )
    parser.add_argument(
        "--cache-frozen",
        dest="cache_frozen",
        nargs="?",
        const="default",
        metavar="DIR",
        help="compute the upstream's frozen part (below every method) once per clip and read it back after "
        "(default DIR: $EFFSPEECH_CACHE or ~/.cache/effspeech/frozen); implies --frozen-eval",
    )
    parser.add_argument("--cache-dtype", dest="cache_dtype", choices=["fp32", "fp16"], default="fp32",
                        help="how cache entries are stored (fp32: exact; fp16: half the disk)")  # fmt: skip
    parser.add_argument("--cache-size", dest="cache_size", metavar="SIZE",
                        help="stop filling the cache past this size (500M, 20G); it keeps computing")  # fmt: skip
    parser.add_argument(
        "--frozen-eval",
        dest="frozen_eval",
        action="store_true",
        help="compute the frozen part per clip and in eval mode, as a cached run does, without a cache",
    )
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                        help="autocast of the forward (fp16 adds a gradient scaler); weights stay fp32")  # fmt: skip
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the transformer, adapters in it (eager where it cannot)")  # fmt: skip
    parser.add_argument("--data-root", dest="data_root", help="Mini-SUPERB root: fills the task's data paths")
    parser.add_argument("-n", "--expname", help="save the experiment at result/downstream/EXPNAME")
    parser.add_argument("-p", "--expdir", help="save the experiment at EXPDIR")
    parser.add_argument("-a", "--auto_resume", action="store_true", help="resume from the latest states-*.ckpt")
    parser.add_argument("--seed", default=1337, type=int)
    parser.add_argument("--device", default=default_device(), help="cuda when available, else cpu")
    parser.add_argument("--cache_dir", help="torch.hub cache directory for upstream downloads")
    parser.add_argument("--verbose", action="store_true", help="print the model")
    parser.add_argument("--disable_cudnn", action="store_true")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error, not one line")
    return parser


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    args.frozen_eval = args.frozen_eval or bool(args.cache_frozen)  # a cached run defines its values so
    return args


def explicit_flags(argv: list[str] | None = None) -> set[str]:
    """Destinations the user actually typed, so a resumed run knows which of its own args may win."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))
