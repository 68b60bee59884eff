"""``effspeech predict -e CKPT PATH...``: one JSON line per recording, from a checkpoint ``run_downstream.py``
trained. A file that cannot be predicted gets a line naming what is wrong with it; the others are still
predicted, and the command then exits with status 2 and the count."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from effspeech.errors import ConfigError

WINDOW = 16  # batches' worth of files read before predicting


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-e", "--ckpt", required=True, help="dev-best.ckpt, states-*.ckpt or an experiment dir")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="audio files, or directories searched recursively")
    parser.add_argument("--out", type=Path, help="write the JSON lines here (default: stdout)")
    parser.add_argument("--rttm", type=Path, help="SD: also write the segments as RTTM lines here")
    parser.add_argument("--batch", type=int, default=8, help="recordings per upstream forward (default: 8)")
    parser.add_argument(
        "--in-order",
        action="store_true",
        help="batch consecutive files as the recipe's test loader does, not longest first (reproduces -m evaluate "
        "exactly on upstreams whose CNN normalises over time)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--scores", action="store_true", help="classification: add every class's probability")
    parser.add_argument("--merge", action="store_true", help="fold LoRA/DoRA/IA3/CNN adapters into the upstream")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from effspeech.superb.inference import AUDIO_SUFFIXES, BadAudioError, audio_files, load_task, read
    from effspeech.superb.tasks.sd import rttm_lines

    if args.batch < 1:
        raise ConfigError(f"--batch must be at least 1, got {args.batch}")
    if args.rttm is not None and args.out is not None and args.rttm.resolve() == args.out.resolve():
        raise ConfigError("--rttm and --out name the same file")
    model = load_task(args.ckpt, device=args.device, merge=args.merge)
    if args.rttm is not None and model.task != "sd":
        raise ConfigError(f"--rttm writes SD segments; {args.ckpt} is a {model.task} checkpoint")
    files = audio_files(args.paths)
    failed = 0
    if not files:
        raise ConfigError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {', '.join(args.paths)}")
    window = WINDOW * args.batch  # files read at once: sorted by length within, written in input order
    with (
        _output(args.out, sys.stdout) as out,
        _output(args.rttm, None) as rttm,
        tqdm(total=len(files), desc="predict", unit="file", file=sys.stderr, disable=None) as progress,
    ):
        for start in range(0, len(files), window):
            lines: list[dict[str, Any]] = []
            good: dict[int, Any] = {}
            for path in files[start : start + window]:
                try:
                    wave, rate = read(path)
                    good[len(lines)] = model.prepare(wave, rate, str(path))
                    lines.append({"path": str(path)})
                except BadAudioError as error:
                    lines.append({"path": str(path), "error": str(error).removeprefix(f"{path}: ")})
            predictions = model.predict_prepared(list(good.values()), args.batch, args.scores, args.in_order)
            for index, prediction in zip(good, predictions):
                lines[index].update(prediction)
            for line in lines:
                _write(out, line)
                if rttm is not None and "segments" in line:
                    rttm.writelines(f"{text}\n" for text in rttm_lines(Path(line["path"]).stem, line["segments"]))
            failed += len(lines) - len(good)
            progress.update(len(lines))
    if args.out is not None:
        print(f"{len(files) - failed} of {len(files)} files predicted -> {args.out}", file=sys.stderr)
    if failed:
        raise BadAudioError(f"{failed} of {len(files)} files could not be predicted (their lines say why)")
    return 0


def _write(out: IO[str], record: dict[str, Any]) -> None:
    out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()


@contextlib.contextmanager
def _output(path: Path | None, default: IO[str] | None) -> Iterator[IO[str] | None]:
    """``default`` without a path; else ``path`` written beside itself and renamed over it at the end, so
    that a run that stops midway leaves a previous complete file as it was (and its lines in
    ``<path>.partial``)."""
    if path is None:
        yield default
        return
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w") as handle:
        yield handle
    partial.replace(path)
