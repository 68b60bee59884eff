"""BitFit (Ben Zaken et al., 2022): train only the upstream's own bias terms.

By default the biases of the part S3PRL runs with gradients: the feature projection, its layer norm and
the transformer encoder (the anatomy names them in its scheme). The CNN extractor runs under ``no_grad``
in S3PRL (``feature_grad_mult = 0``), so its biases are included only with ``include_extractor=True``,
which also turns its gradients on. Pretraining-only heads (``final_proj``, ``label_embs_concat``,
quantizer) never see a downstream loss."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from effspeech.anatomy import Anatomy
from effspeech.injector import Injector
from effspeech.method import AdapterMethod, MethodConfig
from effspeech.registry import register_adapter


@dataclass
class BitFitConfig(MethodConfig):
    include_extractor: bool = False


@register_adapter("bitfit")
class BitFit(AdapterMethod):
    Config = BitFitConfig

    def attach(self, anatomy: Anatomy, injector: Injector) -> nn.Module:
        for name, parameter in anatomy.parameters.items():
            if anatomy.is_downstream_bias(name, self.config.include_extractor):
                injector.unfreeze(name, parameter)
        if self.config.include_extractor:
            anatomy.let_extractor_learn(injector)
        return nn.Module()
