"""Speakers: distinct espeak-ng variants (accent and pitch alone do not make distinguishable voices)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from effspeech.tools.synth import espeak
from effspeech.tools.synth.rng import rng_for

# Built-in variants that sound like people (robots, whisper, announcer, croak etc. left out).
NATURAL_VARIANTS = (
    *(f"f{i}" for i in range(1, 6)),
    *(f"m{i}" for i in range(1, 9)),
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Denis", "Diogo", "Gene", "Gene2",
    "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen", "Storm",
    "adam", "anika", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb", "david", "ed",
    "edward", "edward2", "grandma", "grandpa", "gustave", "iven", "iven2", "iven3", "iven4", "john",
    "kaukovalta", "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "linda", "marcelo", "max",
    "michel", "miguel", "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro",
    "shelby", "steph", "steph2", "steph3", "travis", "victor", "zac",
)  # fmt: skip
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
CUSTOM_PREFIX = "mini"
# espeak-ng silently stops finding variants (falling back to the default voice) once a data
# directory holds more than about 350 voice files; each bank keeps well below that.
BANK_SIZE = 250


@dataclass(frozen=True)
class Speaker:
    """One synthetic talker: a variant plus habits (accent, pitch, rate) and a spectral warp."""

    variant: str
    gender: str  # "F" or "M", for corpora that name files by it (IEMOCAP)
    accent: str
    pitch: int  # espeak-ng -p, 0..99
    rate: int  # espeak-ng -s, words per minute
    warp: float  # resampling factor: shifts formants and pitch together, like a different vocal tract
    bank: int = 0  # which private espeak-ng data directory holds the variant (see voice_banks)

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"


def _builtin_gender(variant: str) -> str:
    path = espeak.engine_info()[1] / "voices" / "!v" / variant
    text = path.read_text(errors="replace").lower() if path.exists() else ""
    return "F" if "gender female" in text else "M"


def _custom_variant(name: str, gender: str, rng: np.random.Generator) -> str:
    """A variant file: formant scaling (vocal tract), pitch range, breathiness and roughness."""
    scale = rng.uniform(1.06, 1.2) if gender == "F" else rng.uniform(0.86, 1.0)
    low = int(rng.uniform(150, 200) if gender == "F" else rng.uniform(70, 115))
    lines = ["language variant", f"name {name}", f"gender {'female' if gender == 'F' else 'male'}", ""]
    lines.append(f"pitch {low} {low + int(rng.uniform(40, 110))}")
    for k in range(9):
        freq = int(100 * scale * rng.uniform(0.96, 1.04)) if k < 6 else 100
        lines.append(f"formant {k} {freq} {int(rng.uniform(80, 115))} {int(rng.uniform(80, 140))}")
    lines.append(f"breath {' '.join(str(int(rng.integers(0, 4))) for _ in range(8))}")
    lines.append(f"roughness {int(rng.integers(0, 4))}")
    lines.append(f"flutter {int(rng.integers(0, 20))}")
    return "\n".join(lines) + "\n"


def speaker_pool(n: int, seed: int) -> tuple[list[Speaker], dict[str, str]]:
    """``n`` distinct speakers (built-in variants first, in a seeded order, then custom variants).

    Returns the speakers and the custom variant files (name -> text) that must be installed.
    """
    order = rng_for(seed, "voices").permutation(len(NATURAL_VARIANTS))
    speakers, custom = [], {}
    for i in range(n):
        rng = rng_for(seed, "speaker", i)
        if i < len(NATURAL_VARIANTS):
            variant = NATURAL_VARIANTS[order[i]]
            gender = _builtin_gender(variant)
        else:
            variant, gender = f"{CUSTOM_PREFIX}{i:05d}", "FM"[int(rng.integers(2))]
            custom[variant] = _custom_variant(variant, gender, rng)
        speakers.append(
            Speaker(
                variant=variant,
                gender=gender,
                accent=ACCENTS[int(rng.integers(len(ACCENTS)))],
                pitch=int(rng.integers(35, 66)),
                rate=int(rng.integers(150, 186)),
                warp=round(float(rng.uniform(0.94, 1.06)), 2),
                bank=i // BANK_SIZE,
            )
        )
    return speakers, custom


@contextlib.contextmanager
def voice_banks(custom: dict[str, str], speakers: list[Speaker]) -> Iterator[list[Path]]:
    """Private espeak-ng data directories (``--path``), one per bank of speakers, validated.

    espeak-ng reads variants only from ``<path>/espeak-ng-data/voices/!v``: each bank links the
    system data, only the English language files, and only its own speakers' variants.
    """
    system = espeak.engine_info()[1]
    with tempfile.TemporaryDirectory(prefix="effspeech-espeak-") as tmp:
        banks = [Path(tmp) / f"bank{b}" for b in range(max(s.bank for s in speakers) + 1)]
        for bank, path in enumerate(banks):
            data = path / "espeak-ng-data"
            (data / "voices" / "!v").mkdir(parents=True)
            (data / "lang").mkdir()
            (data / "lang" / "gmw").symlink_to(system / "lang" / "gmw")
            for entry in system.iterdir():
                if entry.name not in ("voices", "lang"):
                    (data / entry.name).symlink_to(entry)
            for speaker in (s for s in speakers if s.bank == bank):
                target = data / "voices" / "!v" / speaker.variant
                if speaker.variant in custom:
                    target.write_text(custom[speaker.variant])
                else:
                    target.symlink_to(system / "voices" / "!v" / speaker.variant)
            validate([s for s in speakers if s.bank == bank], path)
        yield banks


def validate(speakers: list[Speaker], data_path: Path | None = None) -> None:
    """Fail at once on an unknown variant or accent: espeak-ng would fall back silently.

    Variants are checked against ``espeak-ng --voices=variant`` (names are case-sensitive).
    """
    known, accents = espeak.variants(data_path), espeak.languages(data_path)
    for speaker in speakers:
        if speaker.variant not in known:
            raise espeak.EspeakError(
                f"unknown espeak-ng voice variant {speaker.variant!r} (see espeak-ng --voices=variant)"
            )
        if speaker.accent not in accents:
            raise espeak.EspeakError(f"unknown espeak-ng English accent {speaker.accent!r} (see espeak-ng --voices=en)")
