"""Shallow prompt tuning (Lester et al., 2021): learned frames prepended to the transformer's input.

The prompt enters before the first transformer layer (after the convolutional position embedding, so
real frames keep their positions) and is carried through every layer. It is removed from the
encoder's output and from every hidden state S3PRL collects, frame-aligned with the input, so
downstream models see exactly the input's length."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.errors import ConfigError
from effspeech.injector import Injector
from effspeech.method import AdapterMethod, MethodConfig, require_positive
from effspeech.registry import register_adapter

MAX_PROMPT_LENGTH = 512


@dataclass
class PromptConfig(MethodConfig):
    length: int = 10

    def validate(self) -> None:
        require_positive(self, "length")
        if self.length > MAX_PROMPT_LENGTH:
            raise ConfigError(f"PromptConfig.length must be at most {MAX_PROMPT_LENGTH}, got {self.length}")


class Prompt(nn.Module):
    def __init__(self, length: int, dim: int) -> None:
        super().__init__()
        self.frames = nn.Parameter(torch.randn(length, dim) * 0.02)


@register_adapter("prompt")
class PromptTuning(AdapterMethod):
    Config = PromptConfig

    def attach(self, anatomy: Anatomy, injector: Injector) -> nn.Module:
        prompt = Prompt(self.config.length, anatomy.dim)
        anatomy.prepend_frames(injector, prompt.frames, at="layers")
        return prompt
