"""S3PRL's auxiliary files, derived from a corpus in its real layout (works on the real corpora too).

The pip package of s3prl 0.4.18 ships neither its preprocessing scripts' outputs nor ``char.dict``:
- ASR reads length-sorted CSV buckets (``preprocess/generate_len_for_bucket.py``) and a character
  dictionary;
- emotion reads per-fold JSON meta data (``downstream/emotion/IEMOCAP_preprocess.py``).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import soundfile

LIBRISPEECH_SPLITS = ("train-clean-100", "dev-clean", "test-clean")
# S3PRL's char.dict: word separator, letters by LibriSpeech frequency, apostrophe. The order fixes the
# output indices of a trained CTC head; the counts only matter to fairseq's Dictionary.finalize.
CHAR_ORDER = "| E T A O N I H S R D L U M C W F G Y P B V K ' X J Q Z".split()
IEMOCAP_LABELS = {"neu": 0, "hap": 1, "ang": 2, "sad": 3}  # 'exc' is merged into 'hap', as S3PRL does
IEMOCAP_LINE = re.compile(r"^\[[^\]]*\]\t(\S+)\t(\S+)\t")


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
            raise FileNotFoundError(f"no .flac files under {root / split}")
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
    """The character dictionary the ASR recipe's ``dict_path`` points at (``symbol count`` lines)."""
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{sym} {1000 * (len(CHAR_ORDER) - i)}\n" for i, sym in enumerate(CHAR_ORDER)))
    return path


def _iemocap_session(root: Path, session: str) -> list[dict]:
    wavs = {
        p.stem: p.relative_to(root).as_posix() for p in sorted((root / session / "sentences" / "wav").rglob("*.wav"))
    }
    meta = []
    for label_file in sorted((root / session / "dialog" / "EmoEvaluation").glob("*.txt")):
        for line in label_file.read_text(errors="replace").splitlines():
            found = IEMOCAP_LINE.match(line + "\t")
            if not found or found.group(1) not in wavs:
                continue
            utt, emotion = found.groups()
            emotion = "hap" if emotion == "exc" else emotion
            if emotion in IEMOCAP_LABELS:
                meta.append({"path": wavs[utt], "label": emotion, "speaker": utt.split("_")[0]})
    return meta


def iemocap_meta(root: str | Path, out_dir: str | Path) -> list[Path]:
    """Five folds: ``<out_dir>/SessionN/{train,test}_meta_data.json``, test = session N, train = the rest.

    Same content as S3PRL's IEMOCAP_preprocess.py (neu/hap/ang/sad, exc -> hap, paths relative to
    ``root``), but sorted, so the files are reproducible.
    """
    root, out_dir = Path(root), Path(out_dir)
    sessions = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("Session"))
    if not sessions:
        raise FileNotFoundError(f"no Session* folders under {root}")
    per_session = {session: _iemocap_session(root, session) for session in sessions}
    written = []
    for session in sessions:
        folds = {
            "train": [m for other in sessions if other != session for m in per_session[other]],
            "test": per_session[session],
        }
        for name, meta in folds.items():
            path = out_dir / session / f"{name}_meta_data.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"labels": IEMOCAP_LABELS, "meta_data": meta}))
            written.append(path)
    return written
