"""ER: IEMOCAP layout (five sessions, two speakers each), four emotions as SSML prosody styles."""

from __future__ import annotations

import functools
from pathlib import Path
from xml.sax.saxutils import escape

from effspeech.superb.tasks.er import TASK, iemocap_meta
from effspeech.tools.synth import audio, texts
from effspeech.tools.synth.render import run, utterance
from effspeech.tools.synth.rng import rng_for
from effspeech.tools.synth.voices import Speaker
from effspeech.tools.synth.writer import Corpus, layout_path

NAME = TASK.alias
LAYOUT = "IEMOCAP"
ROOT = layout_path(TASK, "datarc.root")
META = layout_path(TASK, "datarc.meta_data")
SESSIONS = 5
SIZES = {  # dialogs per session, utterances per dialog (the two speakers alternate)
    "tiny": {"speakers": 2 * SESSIONS, "dialogs": 2, "utterances": 12},
    "small": {"speakers": 2 * SESSIONS, "dialogs": 6, "utterances": 40},
    "medium": {"speakers": 2 * SESSIONS, "dialogs": 20, "utterances": 60},
}
# SSML prosody per emotion: rate, pitch, pitch range, volume; plus the evaluators' word and V/A/D.
STYLES = {
    "neu": ("100%", "+0%", "100%", "medium", "Neutral", (2.5, 2.5, 2.5)),
    "hap": ("112%", "+30%", "170%", "loud", "Happiness", (4.0, 3.5, 3.0)),
    "sad": ("78%", "-20%", "40%", "soft", "Sadness", (2.0, 2.0, 2.0)),
    "ang": ("118%", "+10%", "140%", "x-loud", "Anger", (1.5, 4.0, 4.0)),
}
HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"


def ssml(text: str, emotion: str) -> str:
    rate, pitch, span, volume = STYLES[emotion][:4]
    prosody = f'rate="{rate}" pitch="{pitch}" range="{span}" volume="{volume}"'
    return f"<speak><prosody {prosody}>{escape(text)}</prosody></speak>"


def evaluation_block(start: float, end: float, utt: str, emotion: str) -> list[str]:
    """One turn in the EmoEvaluation format S3PRL's preprocessing parses (tab-separated)."""
    word, (v, a, d) = STYLES[emotion][4], STYLES[emotion][5]
    return [
        f"[{start:.4f} - {end:.4f}]\t{utt}\t{emotion}\t[{v:.4f}, {a:.4f}, {d:.4f}]",
        *(f"C-E{i}:\t{word};\t()" for i in (1, 2, 3)),
        f"A-E1:\tval {v:.0f}; act {a:.0f}; dom {d:.0f};\t()",
        "",
    ]


def build(root: Path, preset: str, seed: int, speakers: list[Speaker], processes: int) -> dict:
    """Session N has speakers 2N-2 and 2N-1 of the pool, so the sessions (folds) share no speaker.

    The F/M letters in the names are IEMOCAP's two actor roles per session, not the voice's gender.
    """
    size = SIZES[preset]
    corpus = Corpus(root, NAME, LAYOUT, preset, seed)
    jobs, dialogs = [], {}
    for s in range(1, SESSIONS + 1):
        pair = {"F": speakers[2 * s - 2], "M": speakers[2 * s - 1]}
        for d in range(size["dialogs"]):
            lead = "FM"[d % 2]
            dialog = f"Ses{s:02d}{lead}_impro{d // 2 + 1:02d}"
            rng = rng_for(seed, NAME, dialog)
            emotions = [list(STYLES)[i % len(STYLES)] for i in rng.permutation(size["utterances"])]
            turns = []
            for t, emotion in enumerate(emotions):
                role = (lead, "M" if lead == "F" else "F")[t % 2]
                utt = f"{dialog}_{role}{t // 2:03d}"
                rel = f"Session{s}/sentences/wav/{dialog}/{utt}.wav"
                text = ssml(texts.sentence(rng), emotion)
                jobs.append((rel, functools.partial(utterance, NAME, seed, rel, text, pair[role], True)))
                turns.append((utt, emotion))
            dialogs[(s, dialog)] = turns
    results = iter(run([job for _, job in jobs], processes))
    counts: dict[str, int] = {}
    for (s, dialog), turns in dialogs.items():
        lines, clock = [HEADER, ""], 0.0
        for utt, emotion in turns:
            samples = next(results)
            corpus.audio(f"{ROOT}/Session{s}/sentences/wav/{dialog}/{utt}.wav", samples)
            duration = samples.size / audio.SAMPLE_RATE
            lines += evaluation_block(clock, clock + duration, utt, emotion)
            clock += duration + 0.5
            counts[emotion] = counts.get(emotion, 0) + 1
        corpus.text(f"{ROOT}/Session{s}/dialog/EmoEvaluation/{dialog}.txt", lines)
    iemocap_meta(root / ROOT, root / META)
    return corpus.finish(dict(sorted(counts.items())), sessions=SESSIONS, roots=[ROOT, META])
