"""Errors that mean "this cannot be done as asked": an unknown name, a value out of range, a missing
file, a model the library does not know. Their messages name the file, key or value at fault, and the
``effspeech`` and ``run_downstream.py`` commands print them as one line (``--debug`` shows the
traceback). Every other exception is a bug and keeps its traceback.

Each error also derives from the built-in type it replaces, so ``except ValueError`` keeps working."""

from __future__ import annotations

import sys

USER_ERROR = 2  # the exit status of a command that an EffspeechError refused or stopped


class EffspeechError(Exception):
    """Base of the user-facing errors."""


class ConfigError(EffspeechError, ValueError):
    """A setting, hyperparameter or argument value that cannot be used."""


class UnknownNameError(EffspeechError, KeyError, ValueError):
    """A method, task, upstream or preset name nobody registered; the message lists the valid names. A
    lookup error and a bad value both, as the registry raised KeyError and the other lookups ValueError."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class MissingFileError(EffspeechError, FileNotFoundError):
    """A file or directory that was named does not exist."""


class UnsupportedModelError(EffspeechError, TypeError):
    """A model whose structure the anatomy does not know, so no method can be attached to it."""


class WriteError(EffspeechError, OSError):
    """A file could not be written (a full disk, a read-only directory): the message names it, and the
    file's previous version is untouched."""


class DownloadError(EffspeechError, RuntimeError):
    """A checkpoint that has to be downloaded cannot be (offline, say); the message says what to pass instead."""


def report(error: EffspeechError, prog: str) -> int:
    """Print ``error`` as the one line a command ends with (``prog: error: ...``); return the exit status
    (the error's ``exit_status`` where it has one, as a preempted run does)."""
    print(f"{prog}: error: {error}", file=sys.stderr)
    return getattr(error, "exit_status", USER_ERROR)
