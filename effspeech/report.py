"""``effspeech params``: what a spec trains, per method and module, against the whole upstream."""

from __future__ import annotations

from collections import defaultdict

from torch import nn

from effspeech.engine import AdapterSet


def parameter_rows(adapters: AdapterSet) -> list[tuple[str, str, int]]:
    """``(method, module, count)`` per module, in attach order."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for key, parameter in adapters.named_parameters():
        method, path = key.split(".", 1)
        counts[(method, path.rsplit(".", 1)[0] if "." in path else path)] += parameter.numel()
    return [(method, module, count) for (method, module), count in counts.items()]


def count_unique(model: nn.Module) -> int:
    """Parameters of a model, each tensor once (LoRA factors are reachable by two paths)."""
    return sum(parameter.numel() for parameter in {id(p): p for p in model.parameters()}.values())


def format_report(model: nn.Module, adapters: AdapterSet | None) -> str:
    lines = [f"{'method':<12} {'module':<40} {'params':>12}"]
    trainable = 0
    if adapters is not None:
        rows = parameter_rows(adapters)
        for method, module, count in rows:
            lines.append(f"{method:<12} {module:<40} {count:>12,}")
        for method, count in adapters.num_trainable_by_method().items():
            lines.append(f"{method:<12} {'(all)':<40} {count:>12,}")
        trainable = adapters.num_trainable()
    total = count_unique(model)
    lines.append(f"trainable={trainable} total={total} percent={100.0 * trainable / total:.4f}")
    return "\n".join(lines)


def _run(args) -> int:
    from upstream_adapters import ENTRIES

    if args.upstream not in ENTRIES:
        raise SystemExit(f"unknown upstream {args.upstream!r}; valid: {', '.join(sorted(ENTRIES))}")
    expert = ENTRIES[args.upstream](ckpt=args.upstream_ckpt, adapter=args.adapter)
    print(format_report(expert, expert.adapters))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("params", help="count the parameters an adapter spec trains")
    parser.add_argument("-u", "--upstream", default="hubert_adapter")
    parser.add_argument("-k", "--upstream_ckpt", default=None, help="local upstream checkpoint")
    parser.add_argument("--adapter", default="none", help="method name, comma list, or 'none'")
    parser.set_defaults(func=_run)
