"""OFT (Qiu et al. 2023) through the peft library: each target weight is multiplied on its input side
by a trained block-diagonal orthogonal matrix (Cayley transform of skew-symmetric blocks), which keeps
the angles between the pretrained neurons. peft 0.21's defaults are OFTv2's (Qiu et al. 2025): the
rotation acts on the input instead of the weight and the Cayley inverse is a Neumann series."""

from dataclasses import dataclass, field

import peft
import torch.nn as nn

from peftbench.methods.modules import merge_and_unload, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method


@dataclass
class OFTConfig:
    block_size: int = 32  # b: b(b-1)/2 numbers per block, in/b blocks per matrix; peft moves it to a divisor of in
    dropout: float = 0.0  # multiplicative dropout: whole blocks set to the identity
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])
    coft: bool = False  # constrained OFT: the rotation kept within eps of the identity
    eps: float = 6e-5
    block_share: bool = False  # one block shared along the diagonal (b(b-1)/2 per matrix)
    use_cayley_neumann: bool = True  # OFTv2: the Cayley inverse as a Neumann series (faster, approximate)
    num_cayley_neumann_terms: int = 5


def apply_oft(model: nn.Module, cfg: OFTConfig, arch: Arch) -> nn.Module:
    peft_config = peft.OFTConfig(
        r=0,  # the number of blocks follows from the block size
        oft_block_size=cfg.block_size,
        module_dropout=cfg.dropout,
        target_modules=module_names_for_roles(model, arch, cfg.target_modules),
        coft=cfg.coft,
        eps=cfg.eps,
        block_share=cfg.block_share,
        use_cayley_neumann=cfg.use_cayley_neumann,
        num_cayley_neumann_terms=cfg.num_cayley_neumann_terms,
    )
    return peft.get_peft_model(model, peft_config)


register_method(
    Method(
        "oft",
        OFTConfig,
        apply_oft,
        family="reparametrised",
        size_knob="block_size",
        merge=merge_and_unload,  # W <- W R
        linear_targets_only=True,  # peft's OFT wraps only nn.Linear, not GPT-2's Conv1D
    )
)
