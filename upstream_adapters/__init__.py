"""S3PRL-style upstream plugins that attach effspeech adapters (``-u hubert_adapter`` and friends)."""

import effspeech  # noqa: F401  (installs the s3prl compatibility shims before s3prl is imported)
from upstream_adapters.hubconf import ENTRIES, hubert_adapter, hubert_mini_adapter, wav2vec2_adapter, wavlm_adapter

__all__ = ["ENTRIES", "hubert_adapter", "hubert_mini_adapter", "wav2vec2_adapter", "wavlm_adapter"]
