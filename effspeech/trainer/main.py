"""Entry point shared by ``run_downstream.py`` and ``torchrun``: resolve the experiment, seed, run."""

from __future__ import annotations

import random

import numpy as np
import torch

import effspeech  # noqa: F401  (s3prl compatibility shims before any s3prl import)
from effspeech.trainer import distributed
from effspeech.trainer.experiment import resolve
from effspeech.trainer.guard import tapped_reads
from effspeech.trainer.runner import Runner


def run(argv: list[str] | None = None) -> Runner:
    """Do what the flags say and return the runner (its pipeline and adapters, for callers that inspect)."""
    experiment = resolve(argv)
    args = experiment.args
    if args.cache_dir:
        torch.hub.set_dir(args.cache_dir)
    distributed.setup(args)
    try:
        random.seed(args.seed)
        np.random.seed(args.seed)
        torch.manual_seed(args.seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(args.seed)
        torch.backends.cudnn.enabled = not args.disable_cudnn
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        with tapped_reads(args.downstream):  # every audio read checked and attributed (trainer/guard.py)
            runner = Runner(experiment)
            if args.mode == "train":
                runner.train()
            elif distributed.is_leader():  # evaluation is single-process, as in S3PRL
                runner.evaluate_checkpoint()
    finally:
        distributed.teardown()
    return runner


def main(argv: list[str] | None = None) -> int:
    torch.multiprocessing.set_sharing_strategy("file_system")
    run(argv)
    return 0
