"""The settings of one pretraining run (recorded in the checkpoint, so a run can be repeated from it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from effspeech.errors import ConfigError


@dataclass
class PretrainConfig:
    data: str
    out: str
    arch: str = "hubert_small"
    steps: int = 2000
    batch_size: int = 8
    crop_seconds: float = 2.0
    lr: float = 5e-4
    warmup: float = 0.08  # fraction of steps with a linear ramp up to lr; then linear decay to 0
    clusters: int = 100  # MFCC codebook
    pitch_clusters: int = 0  # a codebook of per-frame log F0 + voicing; 0: none
    voice_clusters: int = 0  # a codebook of per-2 s timbre and pitch statistics; 0: none
    seed: int = 0
    device: str = "cpu"
    log_every: int = 10
    threads: int = 0  # torch CPU threads; 0 keeps torch's default (one per core)
    feature_grad_mult: float = 0.1  # 0 freezes the conv extractor at its random init
    unlabeled: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.clusters < 2:
            raise ConfigError(f"clusters={self.clusters}: the MFCC codebook needs at least 2 clusters")
        for name in ("pitch_clusters", "voice_clusters"):
            size = getattr(self, name)
            if size != 0 and size < 2:
                raise ConfigError(f"{name}={size}: use 0 (no such codebook) or at least 2 clusters")
