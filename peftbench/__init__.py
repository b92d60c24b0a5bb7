"""peftbench: compare parameter-efficient fine-tuning methods honestly and reproducibly."""

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

import warnings

# peft 0.21 reads a property that transformers 5 deprecates; the warning is not actionable here.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
