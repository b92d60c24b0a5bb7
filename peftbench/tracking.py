"""Experiment trackers: Weights & Biases (online with a key, offline otherwise) or none."""

import netrc
import os
from pathlib import Path


class NoTracker:
    def log(self, metrics: dict, step: int) -> None:
        pass

    def summary(self, values: dict) -> None:
        pass

    def finish(self, failed: bool = False) -> None:
        pass


def wandb_key_configured() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc(Path.home() / ".netrc").authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_mode(requested: str) -> str:
    if requested == "auto":
        return "online" if wandb_key_configured() else "offline"
    return requested


class WandbTracker:
    def __init__(self, tracker_cfg, config: dict, name: str):
        import wandb  # imported here: slow, and unused with tracker=none

        Path(tracker_cfg.dir).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=tracker_cfg.project,
            entity=tracker_cfg.entity,
            mode=wandb_mode(tracker_cfg.mode),
            dir=tracker_cfg.dir,
            group=tracker_cfg.group,
            tags=list(tracker_cfg.tags),
            name=name,
            config=config,
            reinit="finish_previous",
        )

    def log(self, metrics: dict, step: int) -> None:
        self.run.log(metrics, step=step)

    def summary(self, values: dict) -> None:
        self.run.summary.update(values)

    def finish(self, failed: bool = False) -> None:
        self.run.finish(exit_code=1 if failed else 0)


def make_tracker(tracker_cfg, config: dict, name: str):
    if tracker_cfg.name == "none":
        return NoTracker()
    if tracker_cfg.name == "wandb":
        return WandbTracker(tracker_cfg, config, name)
    raise ValueError(f"Unknown tracker '{tracker_cfg.name}'; valid trackers: wandb, none.")
