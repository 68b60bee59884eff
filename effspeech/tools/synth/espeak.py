"""The espeak-ng engine: one process per utterance, because only that is deterministic."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from effspeech.errors import EffspeechError

BINARY = "espeak-ng"
SAMPLE_RATE = 22050
WAV_HEADER = 44  # --stdout writes a header with bogus sizes; the samples follow it


class EspeakError(EffspeechError, RuntimeError):
    """espeak-ng is missing, or asked for something it does not have."""


def require() -> None:
    """Fail at once, with the fix, when espeak-ng is not installed."""
    if shutil.which(BINARY) is None:
        raise EspeakError(
            f"{BINARY} not found on PATH; the Mini-SUPERB generator needs it "
            "(Debian/Ubuntu: apt-get install -y espeak-ng)"
        )


def _run(args: list[str], text: str | None = None) -> subprocess.CompletedProcess:
    require()
    stdin = None if text is None else text.encode("utf-8")
    return subprocess.run([BINARY, *args], input=stdin, capture_output=True, check=False)


@functools.lru_cache(maxsize=1)
def engine_info() -> tuple[str, Path]:
    """Version (output differs between releases, so it goes into meta.json) and data directory."""
    out = _run(["--version"]).stdout.decode()
    found = re.search(r"text-to-speech:\s*(\S+)\s+Data at:\s*(\S+)", out)
    if not found:
        raise EspeakError(f"cannot parse `{BINARY} --version` output: {out!r}")
    return found.group(1), Path(found.group(2))


def version() -> str:
    """The espeak-ng release, e.g. ``1.51``."""
    return engine_info()[0]


def variants(data_path: Path | None = None) -> set[str]:
    """Variant file names espeak-ng knows (a wrong name silently falls back to the default voice)."""
    args = ([f"--path={data_path}"] if data_path else []) + ["--voices=variant"]
    return set(re.findall(r"!v/(\S+)", _run(args).stdout.decode()))


def languages(data_path: Path | None = None) -> set[str]:
    """English language codes (accents) espeak-ng knows."""
    args = ([f"--path={data_path}"] if data_path else []) + ["--voices=en"]
    listing = _run(args).stdout.decode().splitlines()[1:]
    return {line.split()[1] for line in listing if len(line.split()) > 1}


def speak(
    text: str, voice: str, *, rate: int, pitch: int, ssml: bool = False, data_path: Path | None = None
) -> np.ndarray:
    """Synthesise ``text`` (via stdin, so no text is read as an option); int16 at 22,050 Hz.

    ``-z`` drops the ~0.3 s pause espeak-ng otherwise appends to the end.
    """
    args = [f"--path={data_path}"] if data_path else []
    args += ["-v", voice, "-s", str(rate), "-p", str(pitch), "-z", "--stdout"]
    if ssml:
        args.append("-m")
    done = _run(args, text)
    body = done.stdout[WAV_HEADER:]
    samples = np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2")
    if done.returncode != 0 or samples.size == 0:
        raise EspeakError(f"{BINARY} -v {voice} produced no audio for {text!r}: {done.stderr.decode().strip()}")
    return samples
