"""IC: Fluent Speech Commands layout with the real action/object/location intents."""

from __future__ import annotations

import functools
from pathlib import Path

from effspeech.superb.tasks.ic import TASK
from effspeech.tools.synth.render import run, utterance
from effspeech.tools.synth.rng import rng_for
from effspeech.tools.synth.voices import Speaker
from effspeech.tools.synth.writer import Corpus, layout_path

NAME = TASK.alias
LAYOUT = "Fluent Speech Commands"
ROOT = layout_path(TASK, "datarc.file_path")
SIZES = {  # speakers per split (train, valid, test); takes of every intent per speaker
    "tiny": {"speakers": 12, "split": (8, 2, 2), "takes": 1},
    "small": {"speakers": 60, "split": (44, 8, 8), "takes": 2},
    "medium": {"speakers": 97, "split": (77, 10, 10), "takes": 8},
}
COLUMNS = ["", "path", "speakerId", "transcription", "action", "object", "location"]

# The 31 intents of the real corpus: (action, object, location).
INTENTS = (
    *(("activate", "lights", loc) for loc in ("none", "kitchen", "bedroom", "washroom")),
    *(("deactivate", "lights", loc) for loc in ("none", "kitchen", "bedroom", "washroom")),
    *(("increase", "heat", loc) for loc in ("none", "kitchen", "bedroom", "washroom")),
    *(("decrease", "heat", loc) for loc in ("none", "kitchen", "bedroom", "washroom")),
    ("activate", "lamp", "none"), ("deactivate", "lamp", "none"),
    ("activate", "music", "none"), ("deactivate", "music", "none"),
    ("increase", "volume", "none"), ("decrease", "volume", "none"),
    *(("bring", obj, "none") for obj in ("juice", "newspaper", "shoes", "socks")),
    *(("change language", obj, "none") for obj in ("none", "Chinese", "English", "German", "Korean")),
)  # fmt: skip

_SWITCH = {
    "activate": ("turn on the {o}", "switch on the {o}", "{o} on", "turn the {o} on"),
    "deactivate": ("turn off the {o}", "switch off the {o}", "{o} off", "turn the {o} off"),
    "increase": ("turn up the {o}", "increase the {o}", "{o} up", "more {o}"),
    "decrease": ("turn down the {o}", "decrease the {o}", "{o} down", "less {o}"),
}
_SPECIAL = {
    ("activate", "music"): ("play music", "start the music", "put on some music", "music on"),
    ("deactivate", "music"): ("stop the music", "pause the music", "turn off the music", "music off"),
    ("increase", "volume"): ("turn up the volume", "increase the volume", "louder please", "make it louder"),
    ("decrease", "volume"): ("turn down the volume", "decrease the volume", "quieter please", "make it quieter"),
    ("increase", "heat"): ("turn up the heat", "increase the heating", "make it warmer", "heat up"),
    ("decrease", "heat"): ("turn down the heat", "decrease the heating", "make it cooler", "heat down"),
    ("bring",): ("bring me the {o}", "get me the {o}", "fetch the {o}", "i need the {o}"),
    ("change language", "none"): ("change language", "switch the language", "language settings", "change the language"),
    ("change language",): ("change language to {o}", "switch the language to {o}", "set my device to {o}", "use {o}"),
}  # fmt: skip
_LOCATED = ("{p} in the {l}", "in the {l} {p}", "{l} {p}")


def phrasings(action: str, obj: str, location: str) -> list[str]:
    """Several wordings of one intent (the real corpus has 248 phrasings of its 31 intents)."""
    base = _SPECIAL.get((action, obj)) or _SPECIAL.get((action,)) or _SWITCH[action]
    base = tuple(p.format(o=obj) for p in base)
    if location == "none":
        return list(base)
    return [t.format(p=p, l=location) for p in base[:2] for t in _LOCATED]


def _ident(rng, length: int, alphabet: str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") -> str:
    return "".join(alphabet[int(i)] for i in rng.integers(len(alphabet), size=length))


def build(root: Path, preset: str, seed: int, speakers: list[Speaker], processes: int) -> dict:
    size = SIZES[preset]
    corpus = Corpus(root, NAME, LAYOUT, preset, seed)
    rows: dict[str, list[list[object]]] = {"train": [], "valid": [], "test": []}
    jobs = []
    splits = [split for split, n in zip(rows, size["split"], strict=True) for _ in range(n)]
    for s, (split, speaker) in enumerate(zip(splits, speakers, strict=False)):
        spk = _ident(rng_for(seed, NAME, "speaker-id", s), 16)
        for i, intent in enumerate(INTENTS):
            for take in range(size["takes"]):
                rng = rng_for(seed, NAME, "text", s, i, take)
                options = phrasings(*intent)
                text = options[int(rng.integers(len(options)))]
                uid = "-".join(_ident(rng, n, "0123456789abcdef") for n in (8, 4, 4, 4, 12))
                path = f"wavs/speakers/{spk}/{uid}.wav"
                rows[split].append([len(rows[split]), path, spk, text[0].upper() + text[1:], *intent])
                jobs.append((path, functools.partial(utterance, NAME, seed, path, text, speaker)))
    for (path, _), samples in zip(jobs, run([job for _, job in jobs], processes), strict=True):
        corpus.audio(f"{ROOT}/{path}", samples)
    for split, table in rows.items():
        corpus.table(f"{ROOT}/data/{split}_data.csv", COLUMNS, table)
    counts = {split: len(table) for split, table in rows.items()}
    return corpus.finish(
        counts, speakers=dict(zip(rows, size["split"], strict=True)), intents=len(INTENTS), roots=[ROOT]
    )
