"""Prediction with what ``run_downstream.py`` trained: ``load_task`` (one checkpoint) and ``load_tasks``
(several on one upstream); docs/inference.md."""

from effspeech.superb.inference.task_model import TaskModel, load_task
from effspeech.superb.inference.task_set import TaskSet, load_tasks
from effspeech.superb.inference.waves import AUDIO_SUFFIXES, BadAudioError, audio_files, prepare, read

__all__ = ["AUDIO_SUFFIXES", "BadAudioError", "TaskModel", "TaskSet", "audio_files", "load_task", "load_tasks",
           "prepare", "read"]  # fmt: skip
