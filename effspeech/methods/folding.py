"""Parametrized tensors that ``merge()`` folds into the tensors themselves, so that inference costs what the
bare model costs, and that ``unmerge()`` (and ``detach()``, merged or not) restores exactly. Shared by the
methods that reparametrize a weight: lora, dora and ia3."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from effspeech.injector import Injector


class FoldedTensors:
    """The ``(module, tensor name, parametrization)`` sites of one method."""

    def __init__(self) -> None:
        self.sites: list[tuple[nn.Module, str, nn.Module]] = []
        self._originals: dict[int, torch.Tensor] = {}  # site -> its tensor before merge()

    def parametrize(self, injector: Injector, module: nn.Module, name: str, parametrization: nn.Module) -> None:
        injector.parametrize(module, name, parametrization)
        index = len(self.sites)
        self.sites.append((module, name, parametrization))
        injector.on_detach(lambda: self._unfold(index))  # undone first, so the parametrization is there to remove

    @property
    def merged(self) -> bool:
        return bool(self._originals)

    @torch.no_grad()
    def merge(self) -> None:
        for index, (module, name, _) in enumerate(self.sites):
            if index in self._originals:
                continue
            folded = getattr(module, name).detach().clone()
            parametrize.remove_parametrizations(module, name, leave_parametrized=False)
            tensor = getattr(module, name)  # the original Parameter again, the same object as before attach
            self._originals[index] = tensor.detach().clone()
            tensor.copy_(folded)

    @torch.no_grad()
    def unmerge(self) -> None:
        for index in list(self._originals):
            self._unfold(index)

    @torch.no_grad()
    def _unfold(self, index: int) -> None:
        if index not in self._originals:
            return
        module, name, parametrization = self.sites[index]
        getattr(module, name).copy_(self._originals.pop(index))
        parametrize.register_parametrization(module, name, parametrization)


class Foldable:
    """Mixin of the methods whose sites are ``self.folded``: ``AdapterSet.merge()`` finds these."""

    folded: FoldedTensors

    @property
    def merged(self) -> bool:
        return self.folded.merged

    def merge(self) -> None:
        """Fold the method into the upstream's tensors: inference at the cost of no adapter at all."""
        self.folded.merge()

    def unmerge(self) -> None:
        """Restore the exact original tensors and the trainable parametrizations."""
        self.folded.unmerge()
