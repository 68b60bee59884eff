"""The layout of docs/architecture.md, enforced: packages import only downward (core < methods < the
S3PRL-facing layer < tools < entry points) and never each other in a circle; the core patches nothing;
the command line builds its parsers without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = [REPO / "effspeech", REPO / "upstream_adapters", REPO / "downstream", REPO / "run_downstream.py"]
LAYERS = [  # (package prefix, rank): the longest matching prefix decides
    ("effspeech", 0),
    ("effspeech.methods", 1),
    ("effspeech.superb", 2),
    ("effspeech.tools", 3),
    ("upstream_adapters", 4),
    ("downstream", 4),
    ("run_downstream", 4),
]
ALLOWED = {("effspeech", "effspeech.methods")}  # the registry imports the built-in methods on first use


def modules() -> dict[str, Path]:
    """Every module of the project by dotted name (a package by its ``__init__``)."""
    found = {}
    for source in SOURCES:
        for path in [source] if source.is_file() else sorted(source.rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def package_of(module: str, known: dict[str, Path]) -> str:
    return module if known[module].name == "__init__.py" or "." not in module else module.rpartition(".")[0]


def imported(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``module`` imports anywhere in its file (inside functions too)."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package_of(module, known).split(".")
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # `import a.b.c` names the module a.b.c, or a package above it
                name = name.rpartition(".")[0]
            if name:
                targets.add(name)
    return targets


def package_edges() -> set[tuple[str, str]]:
    known = modules()
    edges = set()
    for module, path in known.items():
        for target in imported(module, path, known):
            source, destination = package_of(module, known), package_of(target, known)
            if source != destination:
                edges.add((source, destination))
    return edges


def rank(package: str) -> int:
    return max((length, value) for prefix, value in LAYERS if (length := len(prefix)) and
               (package == prefix or package.startswith(prefix + ".")))[1]  # fmt: skip


def test_layers_import_only_downward():
    edges = package_edges()
    assert ("effspeech.superb.trainer", "effspeech.superb.tasks") in edges  # the scan sees real imports
    upward = sorted(edge for edge in edges - ALLOWED if rank(edge[1]) > rank(edge[0]))
    assert not upward, f"imports against the layers: {upward}"


def test_no_two_packages_import_each_other():
    edges = package_edges() - ALLOWED
    graph: dict[str, set[str]] = {}
    for source, destination in edges:
        graph.setdefault(source, set()).add(destination)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
        return False

    cycles = sorted((a, b) for a, b in edges if reaches(b, a))
    assert not cycles, f"packages in an import cycle: {cycles}"


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_importing_the_core_imports_neither_torch_nor_s3prl():
    out = run_python(
        "import sys, effspeech; print(sorted(m for m in ('torch', 's3prl', 'torchaudio') if m in sys.modules))"
    )
    assert out == "[]"


def test_attaching_with_the_core_installs_no_shim_and_leaves_torchaudio_as_it_was():
    out = run_python(
        """
import sys, torch, torchaudio
names = ("load", "info", "set_audio_backend", "sox_effects")
before = {name: getattr(torchaudio, name, None) for name in names}
safe = list(torch.serialization.get_safe_globals())
import effspeech
from s3prl.upstream.hubert.hubert_model import HubertConfig, HubertModel, HubertPretrainingConfig
config = HubertConfig(label_rate=50.0, encoder_layers=2, encoder_embed_dim=64, encoder_ffn_embed_dim=128,
                      encoder_attention_heads=2, conv_feature_layers="[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2",
                      conv_pos=16, conv_pos_groups=4)
network = HubertModel(config, HubertPretrainingConfig(), [[str(i) for i in range(10)]])
later = {"dora": {}, "parallel": {}, "lnfit": {}, "elp": {"l": False}}  # elp's L-adapters need S3PRL's expert
for spec in ("houlsby,lora,prefix,prompt,cnn,bitfit,adapterbias", later, "ia3"):  # all twelve
    adapters = effspeech.attach(network, spec)
    assert adapters.num_trainable() > 0
    network.extract_features(torch.randn(1, 16000), padding_mask=None, mask=False)
    adapters.detach()
stand_ins = [m for m in ("catalyst", "catalyst.data.sampler", "torchaudio.sox_effects") if m in sys.modules]
layer = [m for m in sys.modules if m.startswith("effspeech.superb")]
changed = [name for name in names if getattr(torchaudio, name, None) is not before[name]]
print(stand_ins, layer, changed, list(torch.serialization.get_safe_globals()) == safe)
"""
    )
    assert out == "[] [] [] True"


def test_the_command_line_builds_every_parser_without_torch():
    out = run_python(
        "import sys\nfrom effspeech.tools.cli import COMMANDS, build_parser\n"
        "parsers = [build_parser(command) for command in COMMANDS]\n"
        "print(sorted(m for m in ('torch', 's3prl', 'numpy') if m in sys.modules))"
    )
    assert out == "[]"
