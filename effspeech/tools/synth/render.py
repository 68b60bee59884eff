"""Utterance pipeline (espeak-ng -> 16 kHz -> room, noise, level) and the ordered process pool."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from effspeech.tools.synth import audio, espeak
from effspeech.tools.synth.rng import rng_for
from effspeech.tools.synth.voices import Speaker

T = TypeVar("T")


@dataclass(frozen=True)
class Channel:
    """Recording conditions one utterance is drawn from."""

    snr_db: tuple[float, float] = (5.0, 30.0)
    noise_kinds: tuple[str, ...] = audio.NOISE_KINDS
    reverb_p: float = 0.5
    lead: tuple[float, float] = (0.05, 0.4)
    trail: tuple[float, float] = (0.05, 0.4)
    level_db: tuple[float, float] = (-32.0, -20.0)


DEFAULT = Channel()


@dataclass(frozen=True)
class Env:
    """What every worker needs: the espeak-ng data paths (one per voice bank) and the babble loop."""

    banks: tuple[Path, ...]
    babble: np.ndarray


_env = Env((), np.zeros(audio.SAMPLE_RATE, np.float32))


def set_env(env: Env) -> None:
    global _env
    _env = env


def current_env() -> Env:
    """This process's environment (the pool initializer sets it in workers)."""
    return _env


def synth(text: str, speaker: Speaker, rng: np.random.Generator, *, ssml: bool = False) -> np.ndarray:
    """Clean 16 kHz speech with per-utterance rate (+-10 %) and pitch jitter, warped per speaker."""
    rate = int(round(speaker.rate * rng.uniform(0.9, 1.1)))
    pitch = int(np.clip(speaker.pitch + rng.integers(-6, 7), 0, 99))
    raw = espeak.speak(text, speaker.voice, rate=rate, pitch=pitch, ssml=ssml, data_path=_env.banks[speaker.bank])
    return audio.to_16k(raw, espeak.SAMPLE_RATE, speaker.warp)


def degrade(x: np.ndarray, rng: np.random.Generator, channel: Channel = DEFAULT) -> np.ndarray:
    """Silence padding, light reverb, level, and noise (so there is never exact digital silence); int16."""
    x = audio.pad(x, rng.uniform(*channel.lead), rng.uniform(*channel.trail))
    if rng.random() < channel.reverb_p:
        x = audio.reverb(x, rng)
    x = audio.normalise(x, rng.uniform(*channel.level_db))
    kind = channel.noise_kinds[int(rng.integers(len(channel.noise_kinds)))]
    x = audio.add_noise(x, audio.noise(kind, x.size, rng, _env.babble), rng.uniform(*channel.snr_db))
    return audio.to_int16(audio.normalise(x, 0.0) if np.max(np.abs(x)) > 0.99 else x)


def render(
    text: str, speaker: Speaker, rng: np.random.Generator, *, ssml: bool = False, channel: Channel = DEFAULT
) -> np.ndarray:
    """One finished utterance: ``synth`` then ``degrade``."""
    return degrade(synth(text, speaker, rng, ssml=ssml), rng, channel)


def utterance(
    task: str, seed: int, key: str, text: str, speaker: Speaker, ssml: bool = False, channel: Channel = DEFAULT
) -> np.ndarray:
    """A picklable job: ``render`` with randomness keyed by (seed, task, key)."""
    return render(text, speaker, rng_for(seed, task, key), ssml=ssml, channel=channel)


def babble_loop(lines: Sequence[str], speakers: Sequence[Speaker], seed: int, seconds: float = 8.0) -> np.ndarray:
    """Several talkers at once, looped: the babble noise source (built once, before the workers start)."""
    rng = np.random.default_rng([seed, 0xBABB1E])
    loop = np.zeros(int(seconds * audio.SAMPLE_RATE), np.float32)
    for text, speaker in zip(lines, speakers, strict=True):
        voice = audio.normalise(synth(text, speaker, rng), -26.0)
        loop += np.roll(np.resize(voice, loop.size), int(rng.integers(loop.size)))
    return loop / audio.rms(loop)


def _call(job: Callable[[], T]) -> T:
    return job()


def run(jobs: Sequence[Callable[[], T]], processes: int) -> Iterator[T]:
    """Yield job results in order, as they finish (so a large preset never sits in memory).

    Each job derives its own randomness, so the results do not depend on ``processes``.
    """
    if processes <= 1 or len(jobs) < 2:
        yield from (job() for job in jobs)
        return
    with multiprocessing.Pool(processes, initializer=set_env, initargs=(_env,)) as pool:
        yield from pool.imap(_call, jobs, chunksize=max(1, min(32, len(jobs) // (processes * 8))))
