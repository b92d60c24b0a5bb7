"""`python -m peftbench +method=<name> +task=<name> [overrides]`: one run, or a grid with -m."""

import os
import re
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from peftbench import CONF_DIR

REQUIRED_GROUPS = ("method", "task")
USAGE_ERROR = 2


def available(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(USAGE_ERROR)


def check_group_choices(arguments: list[str]) -> None:
    """Reject an unknown method/task name before Hydra composes (its own error is long and exits 1)."""
    for argument in arguments:
        match = re.fullmatch(r"[+~]{0,2}(\w+)=(.*)", argument)
        if not match or match.group(1) not in REQUIRED_GROUPS:
            continue
        group, value = match.groups()
        choices = re.sub(r"^(choice|range|glob)\((.*)\)$", r"\2", value).split(",")
        for choice in (c.strip() for c in choices):
            if choice and choice not in available(group):
                fail(f"unknown {group} '{choice}'; available {group}s: {', '.join(available(group))}.")


def check_required_groups(cfg: DictConfig) -> None:
    for group in REQUIRED_GROUPS:
        if group not in cfg:
            fail(f"no {group} given; add +{group}=<name>, available {group}s: {', '.join(available(group))}.")


def threads_per_parallel_job(hydra_cfg) -> int | None:
    """Jobs running side by side share the cores: 2 jobs on 2 cores take 1 thread each."""
    n_jobs = hydra_cfg.launcher.get("n_jobs")
    if hydra_cfg.mode != RunMode.MULTIRUN or not n_jobs or n_jobs == 1:
        return None
    cores = len(os.sched_getaffinity(0))
    return max(1, cores // (cores if n_jobs < 0 else n_jobs))


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_main(cfg: DictConfig) -> float:
    check_required_groups(cfg)
    hydra_cfg = HydraConfig.get()
    if cfg.num_threads is None and (threads := threads_per_parallel_job(hydra_cfg)):
        cfg.num_threads = threads
    if hydra_cfg.mode == RunMode.MULTIRUN and cfg.tracker.get("group", "") is None:
        with open_dict(cfg):  # the runs of one multirun share a W&B group named after the sweep
            cfg.tracker.group = hydra_cfg.sweep.dir.replace("/", "_")
    from peftbench.budget import BudgetError
    from peftbench.recipe import run  # imported here so that usage errors answer fast

    try:
        record = run(cfg).record
    except BudgetError as error:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise  # this job fails; the other jobs of the sweep go on
        fail(str(error))
    return record["metrics"]["final"][cfg.task.main_metric]  # for Hydra sweepers that optimise


def main() -> None:
    check_group_choices(sys.argv[1:])
    hydra_main()
