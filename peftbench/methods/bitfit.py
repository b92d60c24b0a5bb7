"""BitFit (Ben Zaken et al. 2022): only bias terms (and the task head) train. `biases: query_ffn`
trains only the query and FFN-intermediate biases (b_q and b_m2 in the paper), the subset Ben Zaken
et al. found to keep most of the accuracy."""

from dataclasses import dataclass

import torch.nn as nn

from peftbench.methods.modules import freeze_all, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method

BIAS_SETS = {"all": None, "query_ffn": ("q", "ffn_in")}  # None: every bias; else the modules of these roles


@dataclass
class BitFitConfig:
    biases: str = "all"  # all | query_ffn (query and FFN-intermediate biases only)


def apply_bitfit(model: nn.Module, cfg: BitFitConfig, arch: Arch) -> nn.Module:
    if cfg.biases not in BIAS_SETS:
        raise ValueError(f"Unknown BitFit biases '{cfg.biases}'; valid: {', '.join(BIAS_SETS)}.")
    freeze_all(model)
    roles = BIAS_SETS[cfg.biases]
    modules = dict(model.named_modules())
    owners = modules.values() if roles is None else [modules[n] for n in module_names_for_roles(model, arch, roles)]
    for module in owners:
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter):
            bias.requires_grad_(True)
    return model


def merge_bitfit(model: nn.Module) -> nn.Module:
    return model  # the trained biases are the base model's own: nothing to fold, no inference overhead


register_method(Method("bitfit", BitFitConfig, apply_bitfit, family="selective", merge=merge_bitfit))
