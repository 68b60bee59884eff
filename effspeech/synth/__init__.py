"""Mini-SUPERB: six small synthetic corpora in the real corpora's layouts, made with espeak-ng.

``generate(preset, out_dir, seed)`` writes ks/ ic/ sid/ er/ asr/ sd/ under ``out_dir``; S3PRL's
recipes read them through the same dataset code as the real corpora. ``effspeech synth`` is the CLI.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from effspeech.synth import asr, er, espeak, ic, ks, sd, sid, texts
from effspeech.synth.render import Env, babble_loop, current_env, set_env
from effspeech.synth.rng import rng_for
from effspeech.synth.voices import speaker_pool, voice_banks

TASKS = {module.NAME: module for module in (ks, ic, sid, er, asr, sd)}
PRESETS = ("tiny", "small", "medium")
BABBLE_TALKERS = 6

__all__ = ["PRESETS", "TASKS", "generate", "register"]


def generate(
    preset: str,
    out_dir: str | Path,
    seed: int = 0,
    jobs: int = 1,
    tasks: list[str] | None = None,
    log=None,
) -> dict[str, dict]:
    """Write the chosen tasks (default: all six) under ``out_dir/<task>``; return each task's meta.

    Output is byte-identical for the same (preset, seed, espeak-ng version) whatever ``jobs`` is.
    Raises ``espeak.EspeakError`` at once when espeak-ng or a voice is missing.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    chosen = list(tasks or TASKS)
    unknown = [name for name in chosen if name not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    espeak.require()
    engine_version = espeak.version()
    out = Path(out_dir)
    # The pool does not depend on the chosen tasks, so a subset is byte-identical to the full run.
    needed = max(task.SIZES[preset]["speakers"] for task in TASKS.values()) + BABBLE_TALKERS
    speakers, custom = speaker_pool(needed, seed)
    metas = {}
    with voice_banks(custom, speakers) as banks:
        previous = current_env()
        try:
            set_env(Env(tuple(banks), previous.babble))
            lines = [texts.sentence(rng_for(seed, "babble", i)) for i in range(BABBLE_TALKERS)]
            set_env(Env(tuple(banks), babble_loop(lines, speakers[-BABBLE_TALKERS:], seed)))
            for name in chosen:
                started = time.perf_counter()
                metas[name] = TASKS[name].build(out / name, preset, seed, speakers, jobs)
                if log:
                    log(f"{name}: {metas[name]['audio_files']} files, {metas[name]['hours']:.3f} h, "
                        f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        finally:
            set_env(previous)
    summary = {"preset": preset, "seed": seed, "engine": {"name": espeak.BINARY, "version": engine_version}}
    summary["tasks"] = {name: {"audio_files": m["audio_files"], "hours": m["hours"]} for name, m in metas.items()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return metas


def _main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        metas = generate(args.preset, args.out, args.seed, args.jobs, args.tasks, log=print)
    except (espeak.EspeakError, ValueError) as error:
        print(f"effspeech synth: error: {error}", file=sys.stderr)
        return 2
    hours = sum(meta["hours"] for meta in metas.values())
    print(f"wrote {len(metas)} task(s), {hours:.3f} h of audio, to {args.out} in {time.perf_counter() - started:.1f} s")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``effspeech synth``."""
    parser = subparsers.add_parser(
        "synth", help="generate the Mini-SUPERB synthetic corpora (needs espeak-ng)", description=__doc__
    )
    parser.add_argument("--preset", choices=PRESETS, required=True)
    parser.add_argument("--out", type=Path, required=True, help="output folder (one subfolder per task)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (output does not depend on it)")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), help="subset of tasks (default: all)")
    parser.set_defaults(func=_main)
