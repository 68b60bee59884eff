"""ASR: S3PRL's ``asr`` recipe (BiLSTM + CTC over characters) on LibriSpeech train-clean-100, model
selection on dev-clean, WER on test-clean.

The recipe reads length-sorted CSV buckets (S3PRL's ``preprocess/generate_len_for_bucket.py``) and a
character dictionary, neither shipped by the s3prl pip package; ``librispeech_buckets`` and
``char_dict`` derive them from the corpus (real or Mini-SUPERB)."""

from __future__ import annotations

import copy
import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import soundfile

from effspeech.errors import MissingFileError
from effspeech.superb.audio import Entry, Problem, label_problem
from effspeech.superb.tasks.prediction import Prediction, Predictor, recipe_module
from effspeech.superb.tasks.task import Budget, Task

SPLITS = ("train", "dev-clean", "dev-other", "test-clean", "test-other")  # datarc keys listing bucket files
LIBRISPEECH_SPLITS = ("train-clean-100", "dev-clean", "test-clean")
# S3PRL's char.dict: word separator, letters by LibriSpeech frequency, apostrophe. The order fixes the
# output indices of a trained CTC head; the counts only matter to fairseq's Dictionary.finalize.
CHAR_ORDER = "| E T A O N I H S R D L U M C W F G Y P B V K ' X J Q Z".split()


def list_audio(datarc: dict[str, Any]) -> Iterator[Entry | Problem]:
    with open(datarc["dict_path"]) as lines:
        symbols = {line.split()[0] for line in lines if line.strip()}
    transcripts: dict[Path, dict[str, str]] = {}
    for split in SPLITS:
        for name in datarc.get(split) or []:
            table = Path(datarc["bucket_file"], f"{name}.csv")
            if not table.is_file():
                continue
            with open(table, newline="") as handle:
                rows = list(csv.DictReader(handle))
            for row in rows:
                path = Path(datarc["libri_root"], row["file_path"])
                yield from _label_problems(path, transcripts, symbols)
                yield Entry(split, str(path))


def _label_problems(path: Path, cache: dict[Path, dict[str, str]], symbols: set[str]) -> Iterator[Problem]:
    """The recipe reads ``<speaker>-<chapter>.trans.txt`` next to the audio and maps characters to the dict."""
    trans = path.parent / f"{path.parent.parent.name}-{path.parent.name}.trans.txt"
    if trans not in cache:
        lines = trans.read_text().splitlines() if trans.is_file() else []
        cache[trans] = dict((line.split(" ", 1) + [""])[:2] for line in lines if line.strip())
    text = cache[trans].get(path.name.split(".")[0])
    if text is None:
        yield Problem(str(path), "error", f"no transcript in {trans}")
        return
    unknown = sorted(set(text.upper().replace(" ", "|")) - symbols)
    if unknown:
        yield label_problem(path, "".join(unknown), symbols)


def drop_from_bucket(dataset: Any, index: int, path: str) -> bool:
    """The recipe's item is a whole length bucket (``dataset.X[index]``, paths under ``libri_root``): take
    the one bad file out, so that ``runner.on_bad_data: skip`` drops it rather than the bucket."""
    buckets, root = getattr(dataset, "X", None), getattr(dataset, "libri_root", None)
    if not isinstance(buckets, list) or root is None or not 0 <= index < len(buckets):
        return False
    bad = os.path.normpath(path)
    kept = [relative for relative in buckets[index] if os.path.normpath(os.path.join(root, relative)) != bad]
    if not kept or len(kept) == len(buckets[index]):
        return False
    buckets[index] = kept
    return True


def librispeech_buckets(root: str | Path, splits: list[str] | tuple[str, ...], out_dir: str | Path) -> list[Path]:
    """``<out_dir>/<split>.csv`` with columns file_path,length,label, longest first (as S3PRL's script).

    ``file_path`` is relative to ``root`` (the recipe's ``libri_root``); ``length`` is in samples.
    """
    root, out_dir = Path(root), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for split in splits:
        files = sorted((root / split).rglob("*.flac"))
        if not files:
            raise MissingFileError(f"no .flac files under {root / split}")
        lengths = [soundfile.info(str(f)).frames for f in files]
        order = sorted(range(len(files)), key=lambda i: (-lengths[i], str(files[i])))
        path = out_dir / f"{split}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["", "file_path", "length", "label"])
            for row, i in enumerate(order):
                writer.writerow([row, files[i].relative_to(root).as_posix(), lengths[i], ""])
        written.append(path)
    return written


def char_dict(out_path: str | Path) -> Path:
    """The character dictionary the recipe's ``dict_path`` points at (``symbol count`` lines)."""
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{sym} {1000 * (len(CHAR_ORDER) - i)}\n" for i, sym in enumerate(CHAR_ORDER)))
    return path


class Transcripts(Predictor):
    """The recipe's own decoding (``DownstreamExpert.inference``: greedy CTC, or the KenLM decoder its
    config names), with the character dictionary the head was trained on, saved in the checkpoint."""

    def describe(self, head: Any, config: dict[str, Any]) -> dict[str, Any]:
        text = io.StringIO()
        head.dictionary.save(text)
        return {"dictionary": text.getvalue()}

    def build(self, config: dict[str, Any], dim: int, rate: int, info: dict[str, Any], workdir: Path) -> Any:
        dictionary = workdir / "dict.txt"
        dictionary.write_text(info["dictionary"])
        expert = copy.deepcopy(config["downstream_expert"])
        expert["datarc"]["dict_path"] = str(dictionary)
        return recipe_module("asr").DownstreamExpert(dim, rate, expert, str(workdir))

    def decode(self, head: Any, features: list, waves: list, info: dict[str, Any], scores: bool) -> list[Prediction]:
        return [{"text": text} for text in head.inference(features, [])]


TASK = Task(
    name="asr",
    alias="asr",
    test_split="test-clean",
    metric="wer",
    higher_is_better=False,
    in_percent=True,
    data_keys={
        "datarc.libri_root": "asr/LibriSpeech",
        "datarc.bucket_file": "asr/len_for_bucket",
        "datarc.dict_path": "asr/char.dict",
    },
    train_batch_keys=("datarc.train_batch_size", "datarc.batch_size"),
    best_checkpoint="dev-clean-best.ckpt",
    list_audio=list_audio,
    salvage=drop_from_bucket,
    predictor=Transcripts(),
    superb=Budget(200000, 2000),
    cpu=Budget(
        200,
        100,
        {"downstream_expert.modelrc.project_dim": 256, "downstream_expert.modelrc.RNNs.dim": "[256,256]"},
    ),
)
