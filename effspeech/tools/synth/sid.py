"""SID: VoxCeleb1 identification layout; every speaker in all splits, test and dev from other videos."""

from __future__ import annotations

import functools
from pathlib import Path

from effspeech.superb.tasks.sid import TASK
from effspeech.tools.synth import texts
from effspeech.tools.synth.render import Channel, run, utterance
from effspeech.tools.synth.rng import rng_for
from effspeech.tools.synth.voices import Speaker
from effspeech.tools.synth.writer import Corpus, layout_path

NAME = TASK.alias
LAYOUT = "VoxCeleb1 (identification)"
ROOT = layout_path(TASK, "datarc.file_path")
SPLIT_FILE = layout_path(TASK, "datarc.meta_data")
SIZES = {  # videos per speaker (the last is test, the one before dev); utterances per video; sentences each
    "tiny": {"speakers": 10, "videos": 4, "utterances": 3, "sentences": 1},
    "small": {"speakers": 60, "videos": 6, "utterances": 5, "sentences": 2},
    "medium": {"speakers": 250, "videos": 8, "utterances": 8, "sentences": 2},
}
VIDEO_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-"


def video_channel(seed: int, spk: int, video: int) -> Channel:
    """One recording condition per video (noise type, SNR band, room), so test videos sound new."""
    rng = rng_for(seed, NAME, "channel", spk, video)
    snr = float(rng.uniform(8.0, 27.0))
    kind = ("white", "pink", "brown", "babble")[int(rng.integers(4))]
    return Channel(snr_db=(snr - 3.0, snr + 3.0), noise_kinds=(kind,), reverb_p=float(rng.random() < 0.5))


def build(root: Path, preset: str, seed: int, speakers: list[Speaker], processes: int) -> dict:
    size = SIZES[preset]
    corpus = Corpus(root, NAME, LAYOUT, preset, seed)
    lines, jobs = [], []
    for s, speaker in enumerate(speakers[: size["speakers"]]):
        spk = f"id{10001 + s}"  # S3PRL's label is int(id) - 10001
        for v in range(size["videos"]):
            rng = rng_for(seed, NAME, "video", s, v)
            video = "".join(VIDEO_ALPHABET[int(i)] for i in rng.integers(len(VIDEO_ALPHABET), size=11))
            split = 3 if v == size["videos"] - 1 else 2 if v == size["videos"] - 2 else 1
            channel = video_channel(seed, s, v)
            for u in range(size["utterances"]):
                rel = f"{spk}/{video}/{u + 1:05d}.wav"
                text = ". ".join(texts.sentence(rng) for _ in range(size["sentences"]))
                lines.append(f"{split} {rel}")
                jobs.append((rel, functools.partial(utterance, NAME, seed, rel, text, speaker, channel=channel)))
    for (rel, _), samples in zip(jobs, run([job for _, job in jobs], processes), strict=True):
        corpus.audio(f"{ROOT}/dev/wav/{rel}", samples)
    corpus.text(SPLIT_FILE, sorted(lines, key=lambda line: line.split()[1]))
    counts = {
        split: sum(line.startswith(f"{i} ") for line in lines) for i, split in enumerate(("train", "dev", "test"), 1)
    }
    return corpus.finish(counts, speakers=size["speakers"], roots=[ROOT])
