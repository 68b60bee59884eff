"""Entry point shared by ``run_downstream.py`` and ``torchrun``: resolve the experiment, seed, run."""

from __future__ import annotations

import sys

import torch

from effspeech.errors import EffspeechError, report
from effspeech.superb.tasks import get_task
from effspeech.superb.trainer import distributed
from effspeech.superb.trainer.audio_reads import tapped_reads
from effspeech.superb.trainer.experiment import resolve
from effspeech.superb.trainer.rng import seed_everything
from effspeech.superb.trainer.runner import Runner


def run(argv: list[str] | None = None) -> Runner:
    """Do what the flags say and return the runner (its pipeline and adapters, for callers that inspect)."""
    experiment = resolve(argv)
    args = experiment.args
    if args.cache_dir:
        torch.hub.set_dir(args.cache_dir)
    distributed.setup(args)
    try:
        seed_everything(args.seed)
        torch.backends.cudnn.enabled = not args.disable_cudnn
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        with tapped_reads(get_task(args.downstream).converts_audio):  # every audio read checked and attributed
            runner = Runner(experiment)
            if args.mode == "train":
                runner.train()
            elif distributed.is_leader():  # evaluation is single-process, as in S3PRL
                runner.evaluate_checkpoint()
    finally:
        distributed.teardown()
    return runner


def main(argv: list[str] | None = None) -> int:
    """``run_downstream.py``: an ``EffspeechError`` (a bad flag value, a missing file, bad data under
    ``on_bad_data: stop``) ends in one line and exit status 2; ``--debug`` shows its traceback."""
    argv = sys.argv[1:] if argv is None else argv
    torch.multiprocessing.set_sharing_strategy("file_system")
    try:
        run(argv)
    except EffspeechError as error:
        if "--debug" in argv:
            raise
        return report(error, "run_downstream.py")
    return 0
