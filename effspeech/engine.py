"""``attach(model, spec)``: inject adapter methods into a self-supervised speech upstream and hand back an
``AdapterSet`` that owns exactly what trains, saves and loads it, and can take it all out again."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from effspeech.anatomy import Anatomy, find_anatomy
from effspeech.count import count_parameters
from effspeech.errors import ConfigError
from effspeech.injector import Injector
from effspeech.registry import get_method
from effspeech.spec import Spec, config_to_dict, resolve_configs

CONTAINER = "effspeech_adapters"  # child module of the model that holds every adapter module


def attach(model: nn.Module, spec: str | list | tuple | dict) -> AdapterSet:
    """Freeze ``model`` and attach the methods in ``spec``; only their tensors stay trainable."""
    configs = resolve_configs(spec)  # fails on bad names/values before the model is touched
    if not configs:
        raise ConfigError("empty adapter spec: name at least one method, e.g. 'houlsby' or ['lora', 'cnn']")
    anatomy = find_anatomy(model)
    if hasattr(anatomy.root, CONTAINER):
        raise ConfigError(f"{type(model).__name__} already has adapters attached; detach() them first")

    base = Injector()
    base.freeze(anatomy.parameters)
    container = nn.ModuleDict()
    base.add_module(anatomy.root, CONTAINER, container)
    injectors: dict[str, Injector] = {}
    methods = {}
    try:
        for name, config in configs.items():
            method = get_method(name)(config)
            injectors[name] = Injector()
            container[name] = method.attach(anatomy, injectors[name])
            methods[name] = method
        _refuse_shared_tensors(methods, container, injectors)
    except BaseException:  # a method that refuses this model leaves it exactly as it was
        for injector in reversed(list(injectors.values())):
            injector.undo_all()
        base.undo_all()
        raise
    parameter = next(iter(anatomy.parameters.values()))
    container.to(device=parameter.device, dtype=parameter.dtype)
    adapters = AdapterSet(anatomy, methods, container, injectors, base)
    container.owner = adapters  # a plain attribute: what adapters_of() finds; gone with the container
    return adapters


def _refuse_shared_tensors(methods: dict[str, Any], container: nn.ModuleDict, injectors: dict[str, Injector]) -> None:
    """Two methods that train the same tensor (bitfit and lnfit both train the LayerNorm biases) would put
    it in two optimizer groups; refuse them here, naming the tensor."""
    owners: dict[int, str] = {}
    for name in methods:
        for path, parameter in [*container[name].named_parameters(), *injectors[name].unfrozen.items()]:
            other = owners.setdefault(id(parameter), name)
            if other != name:
                raise ConfigError(f"{other} and {name} both train {path}: attach one of them, or narrow one")


def adapters_of(model: nn.Module) -> AdapterSet | None:
    """The ``AdapterSet`` attached to ``model`` (an upstream built with adapters elsewhere), or None when it
    has none; a model the anatomy does not know raises ``UnsupportedModelError``, as ``attach`` does."""
    container = getattr(find_anatomy(model).root, CONTAINER, None)
    return getattr(container, "owner", None)


class AdapterSet:
    """The attached methods of one upstream: their trainable tensors, their state, their removal."""

    def __init__(
        self,
        anatomy: Anatomy,
        methods: dict[str, Any],
        container: nn.ModuleDict,
        injectors: dict[str, Injector],
        base: Injector,
    ) -> None:
        self.anatomy = anatomy
        self.methods = methods
        self._container = container
        self._injectors = injectors
        self._base = base

    @property
    def spec(self) -> Spec:
        """Every method with all of its hyperparameters, defaults included (YAML-serialisable)."""
        return {name: config_to_dict(method.config) for name, method in self.methods.items()}

    def named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """Trainable tensors by their state-dict key, ``<method>.<path>``."""
        for name in self.methods:
            for path, parameter in self._container[name].named_parameters():
                yield f"{name}.{path}", parameter
            for path, parameter in self._injectors[name].unfrozen.items():
                yield f"{name}.{path}", parameter

    def parameters(self) -> Iterator[nn.Parameter]:
        for _, parameter in self.named_parameters():
            yield parameter

    def num_trainable(self) -> int:
        return count_parameters(self.parameters())

    def num_trainable_by_method(self) -> dict[str, int]:
        named = list(self.named_parameters())
        return {name: count_parameters(p for key, p in named if key.startswith(f"{name}.")) for name in self.methods}

    @property
    def active(self) -> list[str]:
        """The methods that act on the upstream now (all of them unless ``activate`` chose)."""
        return [name for name in self.methods if self._injectors[name].active]

    def touched(self, method: str) -> list[Any]:
        """What ``method`` acts on: the modules it hooks or parametrizes, the tensors it unfroze, the owners of
        the flags and callables it set (``effspeech.frozen`` finds the frozen part from it)."""
        return list(self._injectors[method].touched)

    def activate(self, methods: str | Iterable[str] | None = None) -> None:
        """Only ``methods`` act on the upstream (None: every attached one); the others leave it exactly as if
        they were not attached, until activated again. Nothing is added or removed, so switching costs
        next to nothing: one upstream can serve tasks that use different methods, or none."""
        wanted = list(self.methods) if methods is None else [methods] if isinstance(methods, str) else list(methods)
        unknown = sorted(set(wanted) - set(self.methods))
        if unknown:
            raise ConfigError(f"cannot activate {', '.join(unknown)}: attached are {', '.join(self.methods)}")
        leaving = [name for name in self.methods if name not in wanted and self._injectors[name].active]
        merged = [name for name in leaving if getattr(self.methods[name], "merged", False)]
        if merged:
            raise ConfigError(f"{', '.join(merged)} merged into the upstream: unmerge() before deactivating it")
        for name in reversed(leaving):
            self._injectors[name].set_active(False)
        for name in self.methods:
            if name in wanted:
                self._injectors[name].set_active(True)
        self._settle_flags()

    def _settle_flags(self) -> None:
        """A flag that several methods set (cnn and bitfit: ``feature_grad_mult``) holds the value of the last
        active one to set it, else the model's own: each method's switch alone knows only its own edit."""
        edits = [(injector.active, *flag) for injector in self._injectors.values() for flag in injector.flags]
        originals: dict[tuple[int, str], tuple[Any, Any]] = {}
        for _, owner, name, previous, _ in edits:
            originals.setdefault((id(owner), name), (owner, previous))
        for (_, name), (owner, previous) in originals.items():
            setattr(owner, name, previous)
        for active, owner, name, _, value in edits:
            if active:
                setattr(owner, name, value)

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """The bare upstream inside the block, the same methods active again after it."""
        previous = self.active
        self.activate([])
        try:
            yield
        finally:
            self.activate(previous)

    def _require_active(self, names: Iterable[str], doing: str) -> None:
        inactive = [name for name in names if not self._injectors[name].active]
        if inactive:  # an inactive method's unfrozen tensors hold the upstream's own values
            raise ConfigError(f"{', '.join(inactive)} inactive: activate() it before {doing}")

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Only what the adapters own or unfroze, detached, keyed ``<method>.<path>``."""
        self._require_active(self.methods, "saving its state")
        return {key: parameter.detach() for key, parameter in self.named_parameters()}

    def save_peft(self, directory: str | Path) -> Path:
        """Write the adapter as a Hugging Face PEFT directory (lora, dora, ia3; ``effspeech.peft_format``)."""
        from effspeech.peft_format import save_peft

        return save_peft(self.spec, self.state_dict(), self.anatomy.family, directory)

    def load_state_dict(self, state: dict[str, torch.Tensor], partial: bool = False) -> None:
        """Load a state made by the same spec on the same architecture; any difference is an error that shows it.
        ``partial``: ``state`` holds some of the methods, whose tensors it replaces; the others keep theirs."""
        merged = [name for name, method in self.methods.items() if getattr(method, "merged", False)]
        if merged:
            raise ConfigError(f"{', '.join(merged)} merged into the upstream: unmerge() before loading a state")
        saved_methods = sorted({key.split(".", 1)[0] for key in state})
        methods = [name for name in self.methods if name in saved_methods] if partial else list(self.methods)
        self._require_active(methods, "loading a state")
        own = {key: p for key, p in self.named_parameters() if key.split(".", 1)[0] in methods}
        problems = []
        if saved_methods != sorted(methods):
            problems.append(f"methods: checkpoint has {saved_methods}, this model has {sorted(methods)}")
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing:
            problems.append(f"missing keys ({len(missing)}): {_preview(missing)}")
        if unexpected:
            problems.append(f"unexpected keys ({len(unexpected)}): {_preview(unexpected)}")
        shapes = [
            f"{key}: checkpoint {tuple(state[key].shape)} vs model {tuple(own[key].shape)}"
            for key in sorted(set(own) & set(state))
            if state[key].shape != own[key].shape
        ]
        if shapes:
            problems.append(f"shape mismatches ({len(shapes)}): {_preview(shapes)}")
        if problems:
            raise ConfigError("adapter state does not fit this model:\n  " + "\n  ".join(problems))
        with torch.no_grad():
            for key, parameter in own.items():
                parameter.copy_(state[key])

    def merge(self) -> None:
        """Fold the active mergeable methods (LoRA, DoRA, IA3, CNN) into the upstream's weights for inference."""
        for name in self.active:
            if hasattr(self.methods[name], "merge"):
                self.methods[name].merge()

    def unmerge(self) -> None:
        for method in self.methods.values():
            if hasattr(method, "unmerge"):
                method.unmerge()

    def detach(self) -> None:
        """Remove every hook, parametrization and module; restore changed tensors and ``requires_grad`` flags."""
        for name in reversed(list(self.methods)):
            self._injectors[name].undo_all()
        self._base.undo_all()
        self.methods = {}


def _preview(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")
