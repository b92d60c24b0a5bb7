"""Fine-tuning methods, one module each; importing this package registers them all."""

from peftbench.methods import bitfit, full_ft, linear_probe, lora  # noqa: F401  (registers)
from peftbench.methods.registry import METHODS, Arch, Method, get_method, register_method

__all__ = ["METHODS", "Arch", "Method", "get_method", "register_method"]
