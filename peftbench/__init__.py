"""peftbench: compare parameter-efficient fine-tuning methods honestly and reproducibly."""

import logging
import warnings
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

# bitsandbytes warns at import, on CPUs with AVX512-BF16, that an optional hub kernel package is not
# installed; it falls back to its own kernel, and the line would reach every user of every method.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

# peft 0.21 reads a property that transformers 5 deprecates; the warning is not actionable here.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def __getattr__(name: str):
    """`peftbench.load(checkpoint or record)`: imported on first use (it brings torch, transformers and peft)."""
    if name == "load":
        from peftbench.checkpoints import load

        return load
    raise AttributeError(f"module 'peftbench' has no attribute '{name}'")
