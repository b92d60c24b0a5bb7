"""BOFT (Liu et al. 2024) through the peft library: orthogonal finetuning whose rotation is a product of
m butterfly-permuted block-diagonal orthogonal factors, plus a trained scale per output unit.

peft computes more than one factor (m > 1) only with its `fbd_cuda` extension (CUDA and ninja); without
it peft silently uses m = 1, block-diagonal OFT with a scale. peftbench refuses m > 1 there instead."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn
from peft.tuners.boft.layer import get_fbd_cuda

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class BOFTConfig:
    block_size: int = 4  # b: must divide each target's input width; b x b numbers per block
    n_butterfly_factor: int = 1  # m factors; m > 1 needs peft's CUDA extension
    dropout: float = 0.0  # multiplicative dropout: whole blocks set to the identity
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])


def apply_boft(model: nn.Module, cfg: BOFTConfig, arch: Arch) -> nn.Module:
    if cfg.n_butterfly_factor > 1 and get_fbd_cuda() is None:
        raise ValueError(
            f"BOFT with method.n_butterfly_factor={cfg.n_butterfly_factor} needs peft's fbd_cuda extension "
            "(CUDA and ninja), which does not load here (peft would silently use 1); use method.n_butterfly_factor=1."
        )
    peft_config = peft.BOFTConfig(
        boft_block_size=cfg.block_size,
        boft_block_num=0,  # follows from the block size
        boft_n_butterfly_factor=cfg.n_butterfly_factor,
        boft_dropout=cfg.dropout,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
    )
    return peft.get_peft_model(model, peft_config)


register_method(
    Method(
        "boft",
        BOFTConfig,
        apply_boft,
        family="reparametrised",
        merge=merge_and_unload,  # W <- s * (R W)
        linear_targets_only=True,  # peft's BOFT wraps only nn.Linear, not GPT-2's Conv1D
    )
)
