"""Optimizer and scheduler through S3PRL's own factories, with one parameter group per adapter method so
each method trains at its own learning rate."""

from __future__ import annotations

from typing import Any

import torch
from s3prl.optimizers import get_optimizer
from s3prl.schedulers import get_scheduler
from torch import nn


def build_optimizer(groups: list[dict[str, Any]], total_steps: int, optimizer_config: dict[str, Any]):
    """S3PRL's ``get_optimizer`` on the first group (head + featurizer, at ``optimizer.lr``), then the
    upstream's groups added with their own rates."""
    head, *others = groups
    config = {**optimizer_config, "lr": head["lr"]}
    optimizer = get_optimizer([nn.ParameterList(head["params"])], total_steps, config)
    optimizer.param_groups[0]["name"] = head["name"]
    for group in others:
        optimizer.add_param_group(dict(group))
    return optimizer


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, scheduler_config: dict[str, Any] | None):
    return get_scheduler(optimizer, total_steps, scheduler_config) if scheduler_config else None
