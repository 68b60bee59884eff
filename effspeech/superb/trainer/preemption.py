"""Stopping on a scheduler's signal. A cluster preempts a job with SIGTERM (SLURM: a chosen signal with
``--signal``, some seconds before the kill); a user stops one with Ctrl-C. During training SIGTERM,
SIGUSR1 and SIGINT only set a flag: the loop sees it after the current optimizer step (on every DDP
rank at once), writes ``states-<step>.ckpt`` and results.json, and the run exits with ``PREEMPTED``
(75, EX_TEMPFAIL: "try again"), which a job script turns into a requeue; ``-a`` resumes at that step.
Further SIGTERM/SIGUSR1 while it saves are noted and ignored; a second SIGINT (Ctrl-C twice) stops at once
with KeyboardInterrupt, which the atomic writes survive (the checkpoint being written is then lost, the
previous one stays). The final evaluation and save of a finished run are covered too."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator

from effspeech.errors import EffspeechError

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
PREEMPTED = 75


class Preempted(EffspeechError):
    """The run stopped on a signal after saving a checkpoint that ``-a`` resumes from."""

    exit_status = PREEMPTED


class StopRequest:
    """The first stop signal received while ``listening()``; its name, or None."""

    def __init__(self) -> None:
        self.signal: str | None = None

    def _handle(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if self.signal is None:
            self.signal = name
            logger.warning("%s received: saving and stopping after the current step", name)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt(f"SIGINT while stopping on {self.signal}")
        else:
            logger.warning("%s received while stopping on %s: ignored", name, self.signal)

    @contextlib.contextmanager
    def listening(self) -> Iterator[StopRequest]:
        with handling(self._handle):
            yield self


@contextlib.contextmanager
def handling(handler: Callable[[int, object], None]) -> Iterator[None]:
    """``handler`` for every stop signal inside the block; the previous handlers again after it. Outside the
    main thread, where Python cannot set handlers, the block runs with the process's own."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, handler) for number in SIGNALS}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
