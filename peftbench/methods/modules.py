"""Finding modules by role and freezing parameters: shared by every method."""

import re

import torch.nn as nn
from peft.utils import ModulesToSaveWrapper

from peftbench.methods.registry import Arch


def module_names_for_roles(model: nn.Module, arch: Arch, roles) -> list[str]:
    """Full names of the modules that play the given roles (e.g. q, v), in model order."""
    unknown = [role for role in roles if role not in arch.modules]
    if unknown:
        raise ValueError(
            f"Unknown module role(s) {', '.join(unknown)}; this model defines: {', '.join(arch.modules)}."
        )
    patterns = [re.compile(rf"(^|\.){arch.modules[role]}$") for role in roles]
    names = [name for name, _ in model.named_modules() if any(p.search(name) for p in patterns)]
    if not names:
        raise ValueError(f"No module of the model matches the roles {', '.join(roles)}.")
    return names


def freeze_all(model: nn.Module) -> None:
    for parameter in model.parameters():
        parameter.requires_grad_(False)


def head_parameters(model: nn.Module, arch: Arch) -> list[nn.Parameter]:
    patterns = [re.compile(rf"(^|\.){re.escape(name)}$") for name in arch.head]
    modules = [module for name, module in model.named_modules() if any(p.search(name) for p in patterns)]
    if not modules:
        raise ValueError(f"The model has no head module named {', '.join(arch.head)}.")
    # peft's task models keep a frozen original of the head beside the trained copy
    modules = [m.modules_to_save if isinstance(m, ModulesToSaveWrapper) else m for m in modules]
    return list({id(p): p for module in modules for p in module.parameters()}.values())


def unfreeze_head(model: nn.Module, arch: Arch) -> None:
    """The task head is new and randomly initialised, so it trains under every method."""
    for parameter in head_parameters(model, arch):
        parameter.requires_grad_(True)


# Model types whose attention projections are nn.Linear and carry a bias (BEFT merges into it; LLaMA, Mistral,
# Gemma, Qwen3 and T5 have none, GPT-2's are Conv1D). Qwen2 has biases on q, k and v only, not on attn_out.
LINEAR_BIASED_MODEL_TYPES = ("bert", "roberta", "deberta-v2", "distilbert", "qwen2", "bart")


def target_widths(model_cfg, roles) -> list[tuple[int, int]]:
    """(in_features, out_features) of each module playing the roles, read from the architecture on the
    meta device (a size knob's largest value can depend on the narrowest target)."""
    from peftbench.models import build_meta_model

    model = build_meta_model(model_cfg)
    arch = Arch(modules=dict(model_cfg.modules), head=tuple(model_cfg.head))
    modules = [model.get_submodule(name) for name in module_names_for_roles(model, arch, roles)]
    return [(module.in_features, module.out_features) for module in modules]


def merge_and_unload(model: nn.Module) -> nn.Module:
    """A peft tuner folded into its base weights; the plain transformers model remains."""
    return model.merge_and_unload()
