"""Adapter methods by name: the built-ins and those of plugins (entry-point group ``effspeech.adapters``)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib.metadata import entry_points

from effspeech.errors import ConfigError, UnknownNameError

ENTRY_POINT_GROUP = "effspeech.adapters"

_METHODS: dict[str, type] = {}  # in registration order: the built-ins' own order, then plugins
_BROKEN: dict[str, str] = {}  # plugin name -> why it failed to load
_loaded = False


def register_adapter(name: str) -> Callable[[type], type]:
    """Class decorator: make an ``AdapterMethod`` subclass attachable by ``name``."""

    def decorate(cls: type) -> type:
        known = _METHODS.get(name)
        if known is not None and known is not cls:
            raise ConfigError(f"adapter method {name!r} is already registered by {known.__module__}.{known.__name__}")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return decorate


def _load_all() -> None:
    """Import the built-in methods and every installed plugin, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import effspeech.methods  # noqa: F401  (registers the built-ins)

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            method = entry.load()
        except Exception as error:  # one broken plugin must not take the built-ins down with it
            _BROKEN[entry.name] = f"adapter plugin {entry.name!r} ({entry.value}) failed to load: {error!r}"
            warnings.warn(_BROKEN[entry.name], stacklevel=2)
            continue
        if entry.name not in _METHODS:
            register_adapter(entry.name)(method)


def available_adapters() -> list[str]:
    """Sorted names of every registered adapter method."""
    return sorted(registered_adapters())


def registered_adapters() -> list[str]:
    """Every registered adapter method in a stable order: the built-ins as ``effspeech.methods`` lists them,
    then the plugins (the order of the leaderboard's rows and the benchmark's)."""
    _load_all()
    return list(_METHODS)


def get_method(name: str) -> type:
    """The method class registered as ``name``; the error lists the valid names, or says why a plugin of
    that name could not be loaded."""
    _load_all()
    if name in _BROKEN and name not in _METHODS:
        raise ConfigError(_BROKEN[name])
    if name not in _METHODS:
        raise UnknownNameError(f"unknown adapter method {name!r}; valid names: {', '.join(available_adapters())}")
    return _METHODS[name]
