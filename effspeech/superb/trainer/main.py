"""Entry point shared by ``run_downstream.py`` and ``torchrun``: resolve the experiment, seed, run."""

from __future__ import annotations

import os
import sys

import torch

from effspeech.errors import EffspeechError, report
from effspeech.superb import records
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
    training = args.mode == "train"
    lock = records.ExperimentLock(args.expdir) if training and os.environ.get("RANK", "0") == "0" else None
    if lock is not None:
        lock.acquire()  # a second trainer on this directory stops here, naming the first
    try:
        distributed.setup(args, float(experiment.config["runner"].get("ddp_timeout", distributed.DEFAULT_TIMEOUT)))
        seed_everything(args.seed)
        torch.backends.cudnn.enabled = not args.disable_cudnn
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        with tapped_reads(get_task(args.downstream).converts_audio):  # every audio read checked and attributed
            runner = Runner(experiment)
            if training:
                _train(runner, args.expdir)
            elif distributed.is_leader():  # evaluation is single-process, as in S3PRL
                runner.evaluate_checkpoint()
    finally:
        distributed.teardown()
        if lock is not None:
            lock.release()
    return runner


def _train(runner: Runner, expdir: str) -> None:
    """``runner.train()``; under DDP a collective that fails because a rank died names that rank."""
    try:
        runner.train()
        distributed.barrier()  # every rank done before any tears the group down
    except RuntimeError as error:
        if (
            distributed.world_size() > 1
            and not isinstance(error, EffspeechError)
            and distributed.is_peer_failure(error, expdir)
        ):
            raise distributed.explain_failure(error, expdir) from error
        raise


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
