"""``effspeech params``: what a spec trains, per method and module, against the whole upstream."""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from effspeech.engine import AdapterSet


def parameter_rows(adapters: AdapterSet) -> list[tuple[str, str, int]]:
    """``(method, module, count)`` per module, in attach order."""
    from effspeech.count import count_parameters

    by_module: dict[tuple[str, str], list] = defaultdict(list)
    for key, parameter in adapters.named_parameters():
        method, path = key.split(".", 1)
        by_module[(method, path.rsplit(".", 1)[0] if "." in path else path)].append(parameter)
    return [(method, module, count_parameters(tensors)) for (method, module), tensors in by_module.items()]


def format_report(model: nn.Module, adapters: AdapterSet | None) -> str:
    from effspeech.count import count_parameters

    lines = [f"{'method':<12} {'module':<40} {'params':>12}"]
    trainable = 0
    if adapters is not None:
        for method, module, count in parameter_rows(adapters):
            lines.append(f"{method:<12} {module:<40} {count:>12,}")
        for method, count in adapters.num_trainable_by_method().items():
            lines.append(f"{method:<12} {'(all)':<40} {count:>12,}")
        trainable = adapters.num_trainable()
    total = count_parameters(model)
    lines.append(f"trainable={trainable} total={total} percent={100.0 * trainable / total:.4f}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-u", "--upstream", default="hubert_adapter", help="an effspeech entry or s3prl.hub name")
    parser.add_argument("-k", "--upstream_ckpt", default=None, help="local upstream checkpoint")
    parser.add_argument("--adapter", default="none", help="method name, comma list, or 'none'")


def run(args: argparse.Namespace) -> int:
    from effspeech.superb.upstream import load_upstream

    expert, adapters = load_upstream(args.upstream, args.upstream_ckpt, args.adapter)
    print(format_report(expert, adapters))
    return 0
