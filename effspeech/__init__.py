"""effspeech: parameter-efficient tuning of self-supervised speech models inside S3PRL."""

from effspeech import compat

compat.install()

from effspeech.engine import AdapterSet, attach  # noqa: E402
from effspeech.methods.base import AdapterMethod, MethodConfig  # noqa: E402
from effspeech.registry import available_adapters, register_adapter  # noqa: E402

__all__ = [
    "AdapterMethod",
    "AdapterSet",
    "MethodConfig",
    "attach",
    "available_adapters",
    "register_adapter",
    "compat",
]
__version__ = "0.1.0"
