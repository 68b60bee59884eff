"""The built-in adapter methods; importing this package registers them, in the order of ``BUILT_IN``: the
seven of the 2022 study (Chen et al.), then the later ones."""

import importlib

BUILT_IN = (
    *("houlsby", "adapterbias", "bitfit", "lora", "prefix", "prompt", "cnn"),
    *("dora", "ia3", "parallel", "lnfit", "elp"),
)

for _name in BUILT_IN:
    importlib.import_module(f"{__name__}.{_name}")
