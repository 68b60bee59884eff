"""HuBERT-style masked-prediction pretraining of small upstreams on the Mini-SUPERB train splits.

The result is an S3PRL ``hubert_local`` checkpoint: ``hubert_local`` and ``hubert_adapter`` load it
unchanged. ``effspeech pretrain`` is the CLI; ``pretrain(PretrainConfig(...))`` the Python entry."""

from effspeech.pretrain.train import PretrainConfig, pretrain

__all__ = ["PretrainConfig", "pretrain"]
