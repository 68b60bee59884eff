"""ASR: LibriSpeech layout (FLAC, upper-case .trans.txt) with S3PRL's bucket CSVs and char.dict."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from effspeech.superb.tasks.asr import LIBRISPEECH_SPLITS, TASK, char_dict, librispeech_buckets
from effspeech.tools.synth import texts
from effspeech.tools.synth.render import run, utterance
from effspeech.tools.synth.rng import rng_for
from effspeech.tools.synth.voices import Speaker
from effspeech.tools.synth.writer import Corpus, layout_path

NAME = TASK.alias
LAYOUT = "LibriSpeech"
ROOT = layout_path(TASK, "datarc.libri_root")
BUCKETS = layout_path(TASK, "datarc.bucket_file")
DICT = layout_path(TASK, "datarc.dict_path")
SPLITS = LIBRISPEECH_SPLITS
SIZES = {  # speakers per split (disjoint, as in LibriSpeech); chapters per speaker; utterances per chapter
    "tiny": {"speakers": 12, "split": (8, 2, 2), "chapters": 1, "utterances": 10, "sentences": 1},
    "small": {"speakers": 40, "split": (30, 5, 5), "chapters": 2, "utterances": 25, "sentences": 2},
    "medium": {"speakers": 120, "split": (100, 10, 10), "chapters": 3, "utterances": 40, "sentences": 2},
}


def build(root: Path, preset: str, seed: int, speakers: list[Speaker], processes: int) -> dict:
    size = SIZES[preset]
    corpus = Corpus(root, NAME, LAYOUT, preset, seed)
    ids = rng_for(seed, NAME, "ids").choice(np.arange(10, 9000), size=2 * size["speakers"], replace=False)
    chapters: dict[str, list[tuple[str, str]]] = {}  # "<split>/<spk>/<chapter>" -> [(utt id, text)]
    jobs = []
    splits = [split for split, n in zip(SPLITS, size["split"], strict=True) for _ in range(n)]
    for s, (split, speaker) in enumerate(zip(splits, speakers, strict=False)):
        spk = int(ids[s])
        for c in range(size["chapters"]):
            chapter = int(ids[size["speakers"] + s]) * 10 + c
            rng = rng_for(seed, NAME, "chapter", s, c)
            entries = chapters.setdefault(f"{split}/{spk}/{chapter}", [])
            for u in range(size["utterances"]):
                utt = f"{spk}-{chapter}-{u:04d}"
                text = " ".join(texts.sentence(rng) for _ in range(size["sentences"]))
                entries.append((utt, text.upper()))
                jobs.append(functools.partial(utterance, NAME, seed, utt, text, speaker))
    results = iter(run(jobs, processes))
    for folder, entries in chapters.items():
        for utt, _ in entries:
            corpus.audio(f"{ROOT}/{folder}/{utt}.flac", next(results))
        spk, chapter = folder.split("/")[1:]
        corpus.text(f"{ROOT}/{folder}/{spk}-{chapter}.trans.txt", [f"{utt} {text}" for utt, text in entries])
    librispeech_buckets(root / ROOT, SPLITS, root / BUCKETS)
    char_dict(root / DICT)
    counts = {split: sum(len(e) for f, e in chapters.items() if f.startswith(f"{split}/")) for split in SPLITS}
    return corpus.finish(
        counts,
        speakers=dict(zip(SPLITS, size["split"], strict=True)),
        vocabulary=len(texts.vocabulary()),
        roots=[ROOT, BUCKETS, DICT],
    )
