"""Shared fixtures, made once per test session: tiny random upstream checkpoints of every family and the
tiny Mini-SUPERB corpora."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import effspeech.superb  # noqa: F401  (compatibility shims before s3prl)
from effspeech.superb.random_upstream import make_checkpoint
from effspeech.tools.synth.mini_superb import generate

FAMILIES = ("hubert", "wav2vec2", "wavlm")


@pytest.fixture(scope="session", autouse=True)
def frozen_cache_of_the_session(tmp_path_factory):
    """Runs that cache by default (the leaderboard, the demo) write to the session's folder, not the user's."""
    import os

    os.environ.setdefault("EFFSPEECH_CACHE", str(tmp_path_factory.mktemp("frozen-cache")))


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, str]:
    """``{family: path}`` of tiny random checkpoints in S3PRL's formats."""
    folder = tmp_path_factory.mktemp("upstreams")
    return {family: str(make_checkpoint(f"{family}_tiny", 0, folder / f"{family}_tiny.pt")) for family in FAMILIES}


@pytest.fixture(scope="session")
def transformers_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """``{family: directory}`` of tiny random transformers models (``save_pretrained``), data2vec included."""
    from effspeech.superb.transformers_upstream import ARCHS, make_transformers_checkpoint

    folder = tmp_path_factory.mktemp("transformers")
    tiny = {arch: family for arch, (family, _) in ARCHS.items() if arch.endswith("_tiny")}
    return {family: make_transformers_checkpoint(arch, 0, folder / arch) for arch, family in tiny.items()}


@pytest.fixture(scope="session")
def hubert_tiny(tiny_checkpoints) -> str:
    return tiny_checkpoints["hubert"]


@pytest.fixture(scope="session")
def mini_superb(tmp_path_factory) -> Path:
    """Mini-SUPERB ``tiny`` (all six tasks, seed 0): about 25 s of espeak-ng on two cores."""
    out = tmp_path_factory.mktemp("mini-superb")
    generate("tiny", out, seed=0, jobs=2)
    return out


@pytest.fixture
def load_expert(tiny_checkpoints):
    """A fresh S3PRL upstream expert (``<family>_local``) in eval mode."""
    import s3prl.hub

    def load(family: str):
        expert = getattr(s3prl.hub, f"{family}_local")(ckpt=tiny_checkpoints[family])
        return expert.eval()

    return load


@pytest.fixture
def wavs() -> list[torch.Tensor]:
    """Two utterances of different lengths, so padding masks are exercised."""
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(16000, generator=generator), torch.randn(11200, generator=generator)]
