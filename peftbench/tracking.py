"""Experiment trackers: Weights & Biases (online with a key, offline otherwise) or none."""

import netrc
import os
import sys
from pathlib import Path

TRACKERS = ("wandb", "none")
TRACKER_MODES = ("auto", "online", "offline", "disabled")


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
        options = dict(
            project=tracker_cfg.project,
            entity=tracker_cfg.entity,
            dir=tracker_cfg.dir,
            group=tracker_cfg.group,
            tags=list(tracker_cfg.tags),
            name=name,
            config=config,
            reinit="finish_previous",
        )
        mode = wandb_mode(tracker_cfg.mode)
        try:
            # a server that cannot be reached must not cost the run: a bounded wait, then offline
            settings = wandb.Settings(init_timeout=tracker_cfg.init_timeout_s)
            self.run = wandb.init(mode=mode, settings=settings, **options)
        except Exception as error:  # wandb raises its own errors (CommError, UsageError) and timeouts
            if mode != "online":
                raise
            print(
                f"warning: W&B could not be reached ({type(error).__name__}: {str(error)[:200]}); logging offline "
                f"to {tracker_cfg.dir}/wandb/ instead (upload later with `wandb sync`).",
                file=sys.stderr,
            )
            self.run = wandb.init(mode="offline", **options)

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
    raise ValueError(f"Unknown tracker '{tracker_cfg.name}'; valid trackers: {', '.join(TRACKERS)}.")


# --- the summary a tracker keeps of a record ------------------------------------------------------

# Record sections flattened into the W&B summary ("memory/peak_train_bytes"); the report reads them back.
SUMMARY_SECTIONS = ("params", "memory", "throughput", "latency", "checkpoint", "time")


def flatten(values: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float, bool)):
            flat[f"{prefix}{key}"] = value
    return flat


def summary_values(record: dict) -> dict:
    metrics = record["metrics"]
    return {
        **{f"final/{k}": v for k, v in metrics["final"].items()},
        **{f"best/{k}": v for k, v in metrics["best"].items()},
        **flatten({key: record[key] for key in SUMMARY_SECTIONS}),
        "config_hash": record["run"]["config_hash"],
        "method_family": record["run"]["method_family"],
    }
