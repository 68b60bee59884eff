"""SD: two-speaker mixtures in the Kaldi-style folders S3PRL's diarization recipe reads.

Labels come from each speaker's clean track (energy activity), before reverb and noise are added.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from effspeech.superb.tasks.sd import TASK
from effspeech.tools.synth import audio, texts
from effspeech.tools.synth.render import current_env, run, synth
from effspeech.tools.synth.rng import rng_for
from effspeech.tools.synth.voices import Speaker
from effspeech.tools.synth.writer import Corpus

NAME = TASK.alias
LAYOUT = "Kaldi data dirs (S3PRL diarization)"
SPLITS = ("train", "dev", "test")
FRAME = 160  # 10 ms label resolution
SIZES = {  # speakers per split (disjoint); recordings per split; turns per recording
    "tiny": {"speakers": 12, "split": (8, 2, 2), "recordings": (8, 2, 2), "turns": 6},
    "small": {"speakers": 40, "split": (30, 5, 5), "recordings": (300, 40, 40), "turns": 8},
    "medium": {"speakers": 120, "split": (100, 10, 10), "recordings": (2000, 200, 200), "turns": 10},
}


def segments(active: np.ndarray) -> list[tuple[float, float]]:
    """Frame activity -> (start, end) seconds of each run of active frames."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    return [
        (a * FRAME / audio.SAMPLE_RATE, b * FRAME / audio.SAMPLE_RATE)
        for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]


def _recording(pair: tuple[Speaker, Speaker], seed: int, key: str, turns: int) -> tuple[np.ndarray, list[list]]:
    """Alternating turns with gaps and overlaps; returns the mixture and each speaker's segments."""
    rng = rng_for(seed, NAME, key)
    placed, clock, who = [], float(rng.uniform(0.2, 0.8)), int(rng.integers(2))
    for _ in range(turns):
        voice = audio.normalise(synth(texts.sentence(rng), pair[who], rng), rng.uniform(-29.0, -23.0))
        placed.append((who, int(clock * audio.SAMPLE_RATE), voice))
        nxt = who if rng.random() < 0.2 else 1 - who
        gap = rng.uniform(0.2, 0.8) if nxt == who else rng.uniform(-0.8, 0.8)  # negative: overlap
        clock = max(clock + voice.size / audio.SAMPLE_RATE + gap, clock + 0.5)
        who = nxt
    length = max(start + v.size for _, start, v in placed) + int(rng.uniform(0.2, 0.8) * audio.SAMPLE_RATE)
    tracks = np.zeros((2, length), np.float32)
    for w, start, voice in placed:
        tracks[w, start : start + voice.size] += voice
    labels = [segments(audio.activity(track, FRAME)) for track in tracks]
    rt60 = float(rng.uniform(0.1, 0.35))
    mix = sum(audio.reverb(track, rng, rt60) if rt60 > 0.2 else track for track in tracks)
    kind = audio.NOISE_KINDS[int(rng.integers(len(audio.NOISE_KINDS)))]
    mix = audio.add_noise(mix, audio.noise(kind, length, rng, current_env().babble), rng.uniform(10.0, 30.0))
    return audio.to_int16(audio.normalise(mix, rng.uniform(-30.0, -22.0))), labels


def build(root: Path, preset: str, seed: int, speakers: list[Speaker], processes: int) -> dict:
    size = SIZES[preset]
    corpus = Corpus(root, NAME, LAYOUT, preset, seed)
    recordings, bounds = [], np.cumsum([0, *size["split"]])
    for i, split in enumerate(SPLITS):
        pool = list(range(bounds[i], bounds[i + 1]))
        for r in range(size["recordings"][i]):
            a, b = rng_for(seed, NAME, "pair", split, r).choice(pool, 2, replace=False)
            rec = f"{split}_{r:05d}"
            pair = (speakers[a], speakers[b])
            recordings.append(
                (
                    split,
                    rec,
                    (f"spk{a:04d}", f"spk{b:04d}"),
                    functools.partial(_recording, pair, seed, rec, size["turns"]),
                )
            )
    files: dict[str, dict[str, list[str]]] = {split: {} for split in SPLITS}
    for (split, rec, names, _), (mix, labels) in zip(
        recordings, run([r[-1] for r in recordings], processes), strict=True
    ):
        path = corpus.audio(f"wav/{rec}.wav", mix).resolve()
        out = files[split]
        out.setdefault("wav.scp", []).append(f"{rec} {path}")
        out.setdefault("reco2dur", []).append(f"{rec} {mix.size / audio.SAMPLE_RATE:.4f}")
        for spk, segs in zip(names, labels, strict=True):
            for st, et in segs:
                utt = f"{spk}_{rec}_{round(st * 100):06d}_{round(et * 100):06d}"
                out.setdefault("segments", []).append(f"{utt} {rec} {st:.2f} {et:.2f}")
                out.setdefault("utt2spk", []).append(f"{utt} {spk}")
                out.setdefault("rttm", []).append(f"SPEAKER {rec} 1 {st:.2f} {et - st:.2f} <NA> <NA> {spk} <NA> <NA>")
    for split, out in files.items():
        spk2utt: dict[str, list[str]] = {}
        for line in out.get("utt2spk", []):
            utt, spk = line.split()
            spk2utt.setdefault(spk, []).append(utt)
        out["spk2utt"] = [f"{spk} {' '.join(sorted(utts))}" for spk, utts in spk2utt.items()]
        for name, lines in out.items():
            corpus.text(f"{split}/{name}", sorted(lines) if name != "rttm" else lines)
    counts = {split: n for split, n in zip(SPLITS, size["recordings"], strict=True)}
    return corpus.finish(
        counts, speakers=dict(zip(SPLITS, size["split"], strict=True)), note="wav.scp holds absolute paths"
    )
