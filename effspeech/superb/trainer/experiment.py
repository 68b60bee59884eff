"""Resolve one invocation into (args, config, checkpoint): a new experiment reads the task config; ``-e``/``-a``
take args and config from the checkpoint (S3PRL semantics) and let only runtime flags win."""

from __future__ import annotations

import argparse
import sys
from argparse import Namespace
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effspeech.errors import ConfigError
from effspeech.spec import resolve_configs
from effspeech.superb import records
from effspeech.superb.tasks import get_task, resolve_task
from effspeech.superb.trainer.args import RUNTIME_ONLY, explicit_flags, parse_args
from effspeech.superb.trainer.config import adapter_plan, apply_overrides, load_config, set_key
from effspeech.superb.upstream import check_name

RESULT_ROOT = Path("result", "downstream")


@dataclass
class Experiment:
    args: Namespace
    config: dict[str, Any]
    state: records.TrainingState | None  # the loaded checkpoint (-e, -a, -i)
    resume: bool  # continue training from ``state`` (optimizer, step, RNG) rather than only load its weights


def resolve(argv: list[str] | None = None) -> Experiment:
    args = parse_args(argv)
    typed = explicit_flags(argv)
    if args.expdir is None and args.expname is not None:
        args.expdir = str(RESULT_ROOT / args.expname)
    if args.auto_resume and args.expdir and records.states_checkpoints(args.expdir):
        args.past_exp = args.expdir
    if args.mode == "evaluate" and not args.past_exp:
        raise ConfigError("-m evaluate needs -e CKPT (a checkpoint written by -m train)")

    if args.past_exp:
        path = records.resolve_checkpoint(args.past_exp)
        print(f"[Runner] - Resume from {path}")
        state = records.load_state(path)
        if args.mode == "train":
            state.require_resumable(path)
        args = _merge_args(state.args, args, typed, default_expdir=path.parent)
        args.init_ckpt = str(path)
        config = state.config
    else:
        print("[Runner] - Start a new experiment")
        state = None
        if args.expdir is None:
            raise ConfigError("name the experiment: -n NAME (result/downstream/NAME) or -p DIR")
        args.downstream = resolve_task(args.downstream)
        if args.upstream_ckpt and Path(args.upstream_ckpt).is_file():
            args.upstream_ckpt = str(Path(args.upstream_ckpt).resolve())  # -m evaluate may run from elsewhere
        args.config = str(args.config or get_task(args.downstream).config_path())
        config = load_config(args.config)
        if args.init_ckpt:
            state = records.load_state(records.resolve_checkpoint(args.init_ckpt))

    if args.data_root:
        get_task(args.downstream).fill_data_paths(config, args.data_root)
    applied = apply_overrides(args.override, args, config)
    if config.get("runner", {}).get("on_bad_data") == "skip":  # a recipe that reads ahead would stop anyway
        for key, value in get_task(args.downstream).skip_settings.items():
            if any(item.startswith(f"config.{key}=") for item in applied):
                print(f"[Runner] - on_bad_data: skip keeps {key} as -o sets it", file=sys.stderr)
                continue
            print(f"[Runner] - on_bad_data: skip sets {key} = {value!r}", file=sys.stderr)
            set_key(config, key, value)
    check_plan(args, config)
    Path(args.expdir).mkdir(parents=True, exist_ok=True)
    resume = args.mode == "train" and bool(args.past_exp)
    return Experiment(args, config, state, resume)


def check_plan(args: Namespace, config: dict[str, Any]) -> None:
    """Fail in seconds on an unknown upstream or method or an out-of-range hyperparameter: before any data is
    read or model built, not minutes later inside them."""
    check_name(args.upstream)
    resolve_configs(adapter_plan(args.adapter, config)[0])


def _merge_args(saved: dict[str, Any], current: Namespace, typed: set[str], default_expdir: Path) -> Namespace:
    """The checkpoint's args, except runtime flags, and except -n/-p when typed (else: the ckpt's directory,
    so an experiment directory can be moved or copied and still resumed/evaluated in place)."""
    merged = dict(saved)
    for key in RUNTIME_ONLY:
        merged[key] = getattr(current, key)
    if {"expdir", "expname"} & typed:
        merged["expdir"], merged["expname"] = current.expdir, current.expname
    else:
        merged["expdir"] = str(default_expdir)
    for key, value in vars(current).items():
        merged.setdefault(key, value)  # flags added after the checkpoint was written
    return argparse.Namespace(**merged)
