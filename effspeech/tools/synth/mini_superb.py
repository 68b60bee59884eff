"""Mini-SUPERB, all tasks at once: ``generate(preset, out_dir, seed)`` writes ks/ ic/ sid/ er/ asr/ sd/
under ``out_dir`` from one pool of voices; S3PRL's recipes read them through the same dataset code as the
real corpora."""

from __future__ import annotations

import json
import time
from pathlib import Path

from effspeech.errors import UnknownNameError
from effspeech.tools.synth import asr, er, espeak, ic, ks, sd, sid, texts
from effspeech.tools.synth.render import Env, babble_loop, current_env, set_env
from effspeech.tools.synth.rng import rng_for
from effspeech.tools.synth.voices import speaker_pool, voice_banks

GENERATORS = {module.NAME: module for module in (ks, ic, sid, er, asr, sd)}  # task alias -> its generator
SIZES = ("tiny", "small", "medium")  # the --preset values: corpus sizes
BABBLE_TALKERS = 6

__all__ = ["GENERATORS", "SIZES", "generate"]


def generate(
    preset: str,
    out_dir: str | Path,
    seed: int = 0,
    jobs: int = 1,
    tasks: list[str] | None = None,
    log=None,
) -> dict[str, dict]:
    """Write the chosen tasks (default: all six) under ``out_dir/<task>``; return each task's meta.
    ``out_dir/meta.json`` sums up every task in ``out_dir``, those an earlier call wrote included.

        Output is byte-identical for the same (preset, seed, espeak-ng version) whatever ``jobs`` is.
        Raises ``espeak.EspeakError`` at once when espeak-ng or a voice is missing.
    """
    if preset not in SIZES:
        raise UnknownNameError(f"unknown preset {preset!r}; choose from {', '.join(SIZES)}")
    chosen = list(tasks or GENERATORS)
    unknown = [name for name in chosen if name not in GENERATORS]
    if unknown:
        raise UnknownNameError(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(GENERATORS)}")
    espeak.require()
    engine_version = espeak.version()
    out = Path(out_dir)
    # The pool does not depend on the chosen tasks, so a subset is byte-identical to the full run.
    needed = max(task.SIZES[preset]["speakers"] for task in GENERATORS.values()) + BABBLE_TALKERS
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
                metas[name] = GENERATORS[name].build(out / name, preset, seed, speakers, jobs)
                if log:
                    log(f"{name}: {metas[name]['audio_files']} files, {metas[name]['hours']:.3f} h, "
                        f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        finally:
            set_env(previous)
    summary = {"preset": preset, "seed": seed, "engine": {"name": espeak.BINARY, "version": engine_version}}
    written = {name: out / name / "meta.json" for name in GENERATORS if name not in metas}  # by an earlier run
    everything = {**{name: json.loads(path.read_text()) for name, path in written.items() if path.is_file()}, **metas}
    summary["tasks"] = {name: {"audio_files": m["audio_files"], "hours": m["hours"]} for name, m in everything.items()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return metas
