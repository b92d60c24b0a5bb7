"""peftbench: compare parameter-efficient fine-tuning methods honestly and reproducibly."""

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
