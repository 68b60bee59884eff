"""S3PRL-style hub entries that attach effspeech adapters (``-u hubert_adapter`` and friends)."""

from upstream_adapters import hubconf
from upstream_adapters.hubconf import ENTRIES

globals().update(ENTRIES)
__all__ = ["ENTRIES", "hubconf", *ENTRIES]
