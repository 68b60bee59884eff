"""KS: Speech Commands v0.01 layout, plus the separate 12-label test tree (1.0 s clips)."""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

import numpy as np

from effspeech.superb.tasks.ks import TASK
from effspeech.tools.synth import audio
from effspeech.tools.synth.render import Channel, current_env, degrade, run, synth
from effspeech.tools.synth.rng import rng_for
from effspeech.tools.synth.texts import AUXILIARY, COMMANDS
from effspeech.tools.synth.voices import Speaker
from effspeech.tools.synth.writer import Corpus, layout_path

NAME = TASK.alias
LAYOUT = "Speech Commands v0.01"
TRAIN_ROOT = layout_path(TASK, "datarc.speech_commands_root")
TEST_ROOT = layout_path(TASK, "datarc.speech_commands_test_root")
SIZES = {  # speakers; takes of each command per speaker; auxiliary words per speaker; background seconds
    "tiny": {"speakers": 40, "takes": 1, "auxiliary": 3, "background_s": 10},
    "small": {"speakers": 400, "takes": 2, "auxiliary": 6, "background_s": 60},
    "medium": {"speakers": 1500, "takes": 4, "auxiliary": 10, "background_s": 60},
}
BACKGROUND = ("white", "pink", "brown", "babble")
CLIP = audio.SAMPLE_RATE
CHANNEL = Channel(lead=(0.0, 0.0), trail=(0.0, 0.0))
MAX_PER_CLASS = 2**27 - 1


def which_set(filename: str, validation: float = 10.0, testing: float = 10.0) -> str:
    """The corpus's own split rule: a hash of the speaker id, so a speaker stays in one split.

    S3PRL's ``split_dataset`` recomputes exactly this, so the lists and the recipe agree.
    """
    speaker = re.sub(r"_nohash_.*$", "", filename)
    digest = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16)
    percentage = (digest % (MAX_PER_CLASS + 1)) * (100.0 / MAX_PER_CLASS)
    return "validation" if percentage < validation else "testing" if percentage < validation + testing else "training"


def speaker_ids(n: int, seed: int) -> list[str]:
    """8-hex ids like the corpus's; drawn until the hash puts every tenth in validation and testing,
    so even the tiny preset has speakers in each split."""
    ids: list[str] = []
    for i in range(n):
        want = {0: "validation", 1: "testing"}.get(i % 10, "training")
        rng = rng_for(seed, NAME, "speaker-id", i)
        while True:
            name = f"{int(rng.integers(2**32)):08x}"
            if which_set(name) == want and name not in ids:
                break
        ids.append(name)
    return ids


def _clip(word: str, speaker: Speaker, seed: int, key: str) -> np.ndarray:
    """One word placed at a random offset in a 1.0 s clip."""
    rng = rng_for(seed, NAME, key)
    voice = synth(word, speaker, rng)[: CLIP - 800]
    x = np.zeros(CLIP, np.float32)
    start = int(rng.integers(CLIP - voice.size + 1))
    x[start : start + voice.size] = voice
    return degrade(x, rng, CHANNEL)


def _noise(kind: str, seconds: float, seed: int, key: str) -> np.ndarray:
    """Background noise at a random level (the _silence_ class is cut from these)."""
    rng = rng_for(seed, NAME, key)
    x = audio.noise(kind, int(seconds * audio.SAMPLE_RATE), rng, current_env().babble)
    return audio.to_int16(audio.normalise(x, rng.uniform(-40.0, -20.0)))


def build(root: Path, preset: str, seed: int, speakers: list[Speaker], processes: int) -> dict:
    size = SIZES[preset]
    corpus = Corpus(root, NAME, LAYOUT, preset, seed)
    ids = speaker_ids(size["speakers"], seed)
    items = []  # (relative path, label, split, job)
    for spk, speaker in zip(ids, speakers, strict=False):
        split = which_set(spk)
        rng = rng_for(seed, NAME, "words", spk)
        aux = [AUXILIARY[i] for i in rng.choice(len(AUXILIARY), size["auxiliary"], replace=False)]
        for word in (*COMMANDS, *aux):
            for k in range(size["takes"] if word in COMMANDS else 1):
                rel = f"{word}/{spk}_nohash_{k}.wav"
                label = word if word in COMMANDS else "_unknown_"
                items.append((rel, label, split, functools.partial(_clip, word, speaker, seed, rel)))
    n_test_silence = max(1, sum(1 for _, label, split, _ in items if split == "testing" and label == "yes"))
    noises = [functools.partial(_noise, kind, size["background_s"], seed, f"bg-{kind}") for kind in BACKGROUND]
    noises += [
        functools.partial(_noise, BACKGROUND[i % len(BACKGROUND)], 1.0, seed, f"silence-{i}")
        for i in range(n_test_silence)
    ]

    counts: dict[str, int] = {}
    jobs = [job for *_, job in items] + noises
    for i, samples in enumerate(run(jobs, processes)):
        if i < len(items):
            rel, label, split, _ = items[i]
            corpus.audio(f"{TRAIN_ROOT}/{rel}", samples)
            counts[f"{split}/{label}"] = counts.get(f"{split}/{label}", 0) + 1
            if split == "testing":
                name = Path(rel).name if label != "_unknown_" else rel.replace("/", "_")
                corpus.audio(f"{TEST_ROOT}/{label}/{name}", samples)
        elif i < len(items) + len(BACKGROUND):
            corpus.audio(f"{TRAIN_ROOT}/_background_noise_/{BACKGROUND[i - len(items)]}_noise.wav", samples)
        else:
            corpus.audio(f"{TEST_ROOT}/_silence_/silence_{i - len(items) - len(BACKGROUND):04d}.wav", samples)
            counts["testing/_silence_"] = counts.get("testing/_silence_", 0) + 1
    for split in ("validation", "testing"):
        corpus.text(f"{TRAIN_ROOT}/{split}_list.txt", sorted(rel for rel, _, s, _ in items if s == split))
    return corpus.finish(dict(sorted(counts.items())), speakers=len(ids), roots=[TRAIN_ROOT, TEST_ROOT])
