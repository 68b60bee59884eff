"""SD, speaker diarization: S3PRL's ``diarization`` recipe on two-speaker Libri2Mix in Kaldi-style
folders (``wav.scp``, ``segments``, ``utt2spk``, ``spk2utt``, ``reco2dur``); frame-level DER."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from effspeech.errors import ConfigError
from effspeech.superb.audio import SAMPLE_RATE, BadAudioError, Entry, Problem
from effspeech.superb.tasks.prediction import Prediction, Predictor, recipe_module
from effspeech.superb.tasks.task import Budget, Task


def list_audio(loaderrc: dict[str, Any]) -> Iterator[Entry | Problem]:
    for key in ("train_dir", "dev_dir", "test_dir"):
        folder = Path(loaderrc[key])
        with open(folder / "wav.scp") as lines:
            recordings = dict(line.split(None, 1) for line in lines if line.strip())
        with open(folder / "segments") as lines:
            for line in lines:
                segment, recording, *_ = line.split()
                if recording not in recordings:
                    yield Problem(
                        str(folder / "segments"),
                        "error",
                        f"segment {segment} names recording {recording!r}, not in wav.scp",
                    )
        for path in recordings.values():
            yield Entry(key.removesuffix("_dir"), path.strip())


THRESHOLD = 0.5  # speaker activity above this counts as speech: the recipe's DER and its make_rttm.py


class SpeakerActivity(Predictor):
    """The recipe's test-time path: a recording cut into ``chunk_size``-frame pieces run as one batch, the
    features matched to the label frames as in training, per-frame speaker activity joined again."""

    per_recording = True

    def build(self, config: dict[str, Any], dim: int, rate: int, info: dict[str, Any], workdir: Path) -> Any:
        expert = copy.deepcopy(config["downstream_expert"])  # its saved frame_shift is the one trained with
        if expert["datarc"].get("subsampling", 1) != 1:
            raise ConfigError(
                f"downstream_expert.datarc.subsampling={expert['datarc']['subsampling']}: effspeech predicts SD "
                "checkpoints trained at the recipe's default, 1"
            )
        return recipe_module("diarization").DownstreamExpert(dim, rate, expert, str(workdir))

    def check(self, head: Any, wave: Any, name: str) -> None:
        if len(wave) < head.datarc["frame_shift"]:
            raise BadAudioError(
                f"{name}: {len(wave)} samples, shorter than one SD frame ({head.datarc['frame_shift']})"
            )

    def split(self, head: Any, wave: Any) -> list:
        shift = head.datarc["frame_shift"]
        chunks = recipe_module("diarization", "dataset")._gen_chunk_indices(
            len(wave) // shift, head.datarc["chunk_size"]
        )
        return [wave[start * shift : end * shift] for start, end in chunks]

    def decode(self, head: Any, features: list, waves: list, info: dict[str, Any], scores: bool) -> list[Prediction]:
        import torch
        from torch.nn.utils.rnn import pad_sequence

        step = head.datarc["frame_shift"]
        frames = [len(wave) // step for wave in waves]
        padded = pad_sequence(features, batch_first=True)
        padded, _ = head._match_length(padded, padded.new_zeros(len(waves), max(frames), 1))  # reads only its length
        activity = [chunk[:count] for chunk, count in zip(head.model(padded).sigmoid(), frames)]
        seconds = step / head.datarc.get("rate", SAMPLE_RATE)
        return [{"segments": segments(torch.cat(activity) > THRESHOLD, seconds)}]


def segments(active: Any, seconds: float) -> list[dict[str, Any]]:
    """Runs of active frames, per speaker: ``[{"speaker": k, "start": s, "end": e}]`` in seconds, by start."""
    found = []
    for speaker, column in enumerate(active.T.tolist()):
        start = None
        for frame, on in enumerate([*column, False]):
            if on and start is None:
                start = frame
            elif not on and start is not None:
                found.append({"speaker": speaker, "start": round(start * seconds, 3), "end": round(frame * seconds, 3)})
                start = None
    return sorted(found, key=lambda s: (s["start"], s["speaker"]))


def rttm_lines(recording: str, found: list[dict[str, Any]]) -> list[str]:
    """NIST RTTM ``SPEAKER`` lines, speakers named ``<recording>_<k>`` as the recipe's make_rttm.py names them."""
    line = "SPEAKER {0} 1 {1:.2f} {2:.2f} <NA> <NA> {0}_{3} <NA> <NA>"
    return [line.format(recording, s["start"], s["end"] - s["start"], s["speaker"]) for s in found]


TASK = Task(
    name="diarization",
    alias="sd",
    test_split="test",
    metric="der",
    higher_is_better=False,
    data_keys={"loaderrc.train_dir": "sd/train", "loaderrc.dev_dir": "sd/dev", "loaderrc.test_dir": "sd/test"},
    train_batch_keys=("loaderrc.train_batchsize",),
    best_checkpoint="best-states-dev.ckpt",
    list_audio=list_audio,
    predictor=SpeakerActivity(),
    superb=Budget(30000, 1000),
    cpu=Budget(150, 75, {"downstream_expert.datarc.chunk_size": 500}),
)
