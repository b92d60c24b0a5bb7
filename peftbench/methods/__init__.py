"""Fine-tuning methods, one module each; importing this package registers them all."""

from peftbench.methods import (  # noqa: F401  (importing registers them)
    adalora,
    adamix,
    adapters,
    bitfit,
    compacter,
    diff_pruning,
    far,
    fishmask,
    full_ft,
    ia3,
    intrinsic_said,
    linear_probe,
    lora,
    lycoris,
    mam,
    p_tuning,
    prefix_tuning,
    prompt_tuning,
    qlora,
    unipelt,
    vera,
)
from peftbench.methods.registry import METHODS, Arch, Method, get_method, method_options, register_method

__all__ = ["METHODS", "Arch", "Method", "get_method", "method_options", "register_method"]
