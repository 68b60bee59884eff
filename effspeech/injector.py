"""The one way methods change a model: every hook, parametrization, flag or unfrozen tensor is recorded
here, so that ``AdapterSet.detach()`` can undo all of it in reverse order, and so that a method can be
made inactive and active again (``AdapterSet.activate``) without adding or removing anything: while
inactive its hooks pass through, its parametrizations return the tensor unchanged, its flags and
unfrozen tensors hold their original values."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from effspeech.errors import ConfigError


class Injector:
    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []
        self._switches: list[tuple[Callable[[], None], Callable[[], None]]] = []  # (make inactive, make active)
        self.unfrozen: dict[str, nn.Parameter] = {}
        self.flags: list[tuple[Any, str, Any, Any]] = []  # (owner, name, previous value, value)
        self.touched: list[Any] = []  # every module, parameter or object a change acts on (effspeech.frozen)
        self.active = True

    def set_active(self, active: bool) -> None:
        if active == self.active:
            return
        # off in reverse order, as undo runs, so that two edits of one attribute unwind; on in forward order
        for off, on in reversed(self._switches) if not active else self._switches:
            (on if active else off)()
        self.active = active

    def forward_hook(self, module: nn.Module, hook: Callable, prepend: bool = False) -> None:
        """``hook(module, args, output) -> output``; ``prepend`` runs it before hooks already there."""

        def gated(mod: nn.Module, args: tuple, output: Any) -> Any:
            return hook(mod, args, output) if self.active else None

        self.touched.append(module)
        self._undo.append(module.register_forward_hook(gated, prepend=prepend).remove)

    def forward_pre_hook(self, module: nn.Module, hook: Callable[[nn.Module, CallArguments], None]) -> None:
        """``hook(module, call)`` edits the named arguments of the call in place (positional or keyword)."""
        signature = inspect.signature(module.forward)

        def edit(mod: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
            if not self.active:
                return None
            call = CallArguments(signature.bind(*args, **kwargs))
            hook(mod, call)
            return call.bound.args, call.bound.kwargs

        self.touched.append(module)
        self._undo.append(module.register_forward_pre_hook(edit, with_kwargs=True).remove)

    def parametrize(self, module: nn.Module, tensor_name: str, parametrization: nn.Module) -> None:
        """Route every read of ``module.<tensor_name>`` through ``parametrization`` (fused kernels included)."""
        if parametrize.is_parametrized(module, tensor_name):
            raise ConfigError(f"{type(module).__name__}.{tensor_name} already carries a parametrization")
        parametrize.register_parametrization(module, tensor_name, parametrization)
        self.touched.append(module)
        self._undo.append(lambda: parametrize.remove_parametrizations(module, tensor_name, leave_parametrized=False))
        compute = parametrization.forward  # the method's own module: inactive, the tensor comes out as it is

        def forward(tensor: torch.Tensor, *rest: Any) -> torch.Tensor:
            return compute(tensor, *rest) if self.active else tensor

        parametrization.forward = forward
        self._undo.append(lambda: vars(parametrization).pop("forward", None))

    def set_attribute(self, owner: Any, name: str, value: Any) -> None:
        """Set a plain attribute (a flag); inactive, it holds its previous value."""
        previous = getattr(owner, name)
        setattr(owner, name, value)
        self.touched.append(owner)
        self.flags.append((owner, name, previous, value))
        self._undo.append(lambda: setattr(owner, name, previous))
        self._switches.append((lambda: setattr(owner, name, previous), lambda: setattr(owner, name, value)))

    def chain(self, owner: Any, name: str, edit: Callable[[Any], Any]) -> None:
        """``owner.<name>`` is a one-argument callable or None (an S3PRL expert's ``hook_postprocess``): its
        calls now go through ``edit`` first, then through what was there; inactive, ``edit`` is skipped.
        Several methods chain onto one attribute and switch independently."""
        previous = getattr(owner, name)

        def call(value: Any) -> Any:
            value = edit(value) if self.active else value
            return previous(value) if callable(previous) else value

        setattr(owner, name, call)
        self.touched.append(owner)
        self._undo.append(lambda: setattr(owner, name, previous))

    def add_module(self, parent: nn.Module, name: str, child: nn.Module) -> None:
        if hasattr(parent, name):
            raise ConfigError(f"{type(parent).__name__} already has an attribute {name!r}")
        parent.add_module(name, child)
        self._undo.append(lambda: delattr(parent, name))

    def freeze(self, parameters: dict[str, nn.Parameter]) -> None:
        """Freeze every parameter; detach restores each one's own ``requires_grad``."""
        flags = {name: parameter.requires_grad for name, parameter in parameters.items()}
        for parameter in parameters.values():
            parameter.requires_grad_(False)
        self._undo.append(lambda: [parameters[name].requires_grad_(flag) for name, flag in flags.items()])

    def unfreeze(self, name: str, parameter: nn.Parameter) -> None:
        """Train one of the model's own tensors; detach puts its original values back."""
        original = parameter.detach().clone()
        parameter.requires_grad_(True)
        self.unfrozen[name] = parameter
        self.touched.append(parameter)

        def restore() -> None:
            with torch.no_grad():
                parameter.copy_(original)
            parameter.requires_grad_(False)
            del self.unfrozen[name]

        trained: list[torch.Tensor] = []

        @torch.no_grad()
        def off() -> None:
            trained.append(parameter.detach().clone())
            parameter.copy_(original)

        @torch.no_grad()
        def on() -> None:
            parameter.copy_(trained.pop())

        self._undo.append(restore)
        self._switches.append((off, on))

    def on_detach(self, callback: Callable[[], None]) -> None:
        self._undo.append(callback)

    def undo_all(self) -> None:
        self.set_active(True)  # each change undone from the state it made
        self._switches.clear()
        self.touched.clear()
        while self._undo:
            self._undo.pop()()


class CallArguments:
    """The arguments of one module call by parameter name, whatever way the caller passed them."""

    def __init__(self, bound: inspect.BoundArguments) -> None:
        self.bound = bound

    def get(self, name: str) -> Any:
        return self.bound.arguments.get(name)

    def set(self, name: str, value: Any) -> None:
        self.bound.arguments[name] = value
