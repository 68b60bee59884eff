"""The loss curve next to the checkpoint: ``<ckpt>.loss.json`` for tools, ``<ckpt>.loss.png`` for people."""

from __future__ import annotations

import json
from pathlib import Path


def save_curve(records: list[dict], checkpoint: Path) -> tuple[Path, Path]:
    """Write the logged records (each with ``step``, ``loss``, ``ce``, ``accuracy``,
    and ``ce_<codebook>``/``accuracy_<codebook>`` for codebooks after the first) as JSON and a plot."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    stem = checkpoint.with_suffix("")
    json_path, png_path = Path(f"{stem}.loss.json"), Path(f"{stem}.loss.png")
    json_path.write_text(json.dumps(records, indent=1) + "\n")
    steps = [record["step"] for record in records]
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(10, 3.5))
    left.plot(steps, [record["loss"] for record in records], label="loss")
    for key in records[0]:
        codebook = key.partition("_")[2] or "mfcc"
        if key.startswith("ce"):
            left.plot(steps, [record[key] for record in records], label=f"masked cross-entropy ({codebook})")
        elif key.startswith("accuracy"):
            right.plot(steps, [record[key] for record in records], label=codebook)
    left.set_xlabel("step")
    left.legend()
    right.set_xlabel("step")
    right.set_ylabel("masked-frame accuracy")
    right.legend()
    figure.suptitle(checkpoint.name)
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    pyplot.close(figure)
    return json_path, png_path
