"""S3PRL-style hub entries that attach effspeech adapters (``-u hubert_adapter`` and friends)."""

from upstream_adapters.hubconf import ENTRIES, hubert_adapter, hubert_mini_adapter, wav2vec2_adapter, wavlm_adapter

__all__ = ["ENTRIES", "hubert_adapter", "hubert_mini_adapter", "wav2vec2_adapter", "wavlm_adapter"]
