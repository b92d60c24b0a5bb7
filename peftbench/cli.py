"""python -m peftbench +method=<name> +task=<name> [key=value ...]        one run: fine-tune, evaluate, record
python -m peftbench -m +method=lora,bitfit +task=rte seed=0,1,2         a grid (hydra/launcher=local_parallel)

Examples:
  python -m peftbench +method=lora +task=rte                            LoRA on RTE with MiniLM-L6 (make run)
  python -m peftbench +method=lora +task=sst2 method.r=4 trainer.precision=bf16
  python -m peftbench +method=adapter_houlsby +task=e2e_nlg model=smollm2_135m
  python -m peftbench +method=lora +task=rte model=hf model.hub_id=roberta-base budget=params_0.3m
Each run writes one JSON record under results/ (results_dir=...) and its checkpoint under checkpoints/
(load it with peftbench.load, predict with python -m peftbench.predict). A bad command line exits 2 with
one sentence naming the bad value and the valid choices, before any model is built."""

import difflib
import os
import re
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from peftbench import CONF_DIR

REQUIRED_GROUPS = ("method", "task")
CHOSEN_GROUPS = ("method", "task", "model", "trainer", "tracker", "budget")  # conf/<group>/<name>.yaml
USAGE_ERROR = 2
# Hydra's own flags that name another primary config: the command line is then checked by the run itself
CONFIG_FLAGS = ("--config-name", "-cn", "--config-path", "-cp")
# Hydra's flag that adds a folder of the user's own configs (conf/<group>/<name>.yaml beside the package's)
CONFIG_DIR_FLAGS = ("--config-dir", "-cd")
HELP_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c")


def user_config_dirs(arguments: list[str]) -> list[Path]:
    """The user's config folders on the command line: --config-dir/-cd and hydra.searchpath's file:// entries."""
    folders = []
    for index, argument in enumerate(arguments):
        flag, _, value = argument.partition("=")
        if argument in CONFIG_DIR_FLAGS and index + 1 < len(arguments):
            folders.append(arguments[index + 1])
        elif flag in CONFIG_DIR_FLAGS:
            folders.append(value)
        elif flag.lstrip("+") == "hydra.searchpath":
            entries = [entry.strip().strip("'\"") for entry in value.strip("[]").split(",")]
            folders += [entry.removeprefix("file://") for entry in entries if entry and not entry.startswith("pkg://")]
    return [Path(folder).expanduser() for folder in folders]


def available(group: str, user_dirs: list[Path] = ()) -> list[str]:
    """The names a config group offers: the package's conf/<group>/ and the user's folders' <group>/."""
    return sorted({path.stem for folder in (CONF_DIR, *user_dirs) for path in (folder / group).glob("*.yaml")})


def overrides_only(arguments: list[str]) -> list[str]:
    """The key=value overrides of a command line: Hydra's flags, and the folder after --config-dir, left out."""
    after_flag = {index + 1 for index, argument in enumerate(arguments) if argument in CONFIG_DIR_FLAGS}
    return [a for index, a in enumerate(arguments) if index not in after_flag and not a.startswith("-")]


def answer_help(arguments: list[str], usage: str, groups: tuple[str, ...] = CHOSEN_GROUPS) -> None:
    """-h/--help: the entry point's usage and the names each config group offers, then exit 0 (Hydra's own
    help stays at --hydra-help)."""
    if not any(argument in ("-h", "--help") for argument in arguments):
        return
    lines = [usage.strip(), "", "Config groups (group=name; method and task are added with +method= +task=):"]
    lines += [f"  {group}: {', '.join(available(group))}" for group in groups]
    lines += ["", "Any config key can be set as key=value (python -m peftbench --cfg job shows them all)."]
    print("\n".join(lines))
    raise SystemExit(0)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(USAGE_ERROR)


def check_group_choices(arguments: list[str]) -> None:
    """Reject an unknown config name before Hydra composes (its own error is long and exits 1); names in
    the user's config folders count."""
    user_dirs = user_config_dirs(arguments)
    for argument in overrides_only(arguments):
        match = re.fullmatch(r"[+~]{0,2}(\w+)=(.*)", argument)
        if not match or match.group(1) not in CHOSEN_GROUPS:
            continue
        group, value = match.groups()
        choices = re.sub(r"^(choice|range|glob)\((.*)\)$", r"\2", value).split(",")
        for choice in (c.strip() for c in choices):
            if choice and choice not in (names := available(group, user_dirs)):
                fail(f"unknown {group} '{choice}'; available {group}s: {', '.join(names)}.")


def check_required_groups(cfg: DictConfig, user_dirs: list[Path] = ()) -> None:
    for group in REQUIRED_GROUPS:
        if group not in cfg:
            names = ", ".join(available(group, user_dirs))
            fail(f"no {group} given; add +{group}=<name>, available {group}s: {names}.")


def first_combination(arguments: list[str]) -> list[str]:
    """The overrides of a grid's first job (a sweep `a=1,2` as `a=1`); Hydra's own keys left out."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = [a for a in overrides_only(arguments) if not a.startswith(("hydra.", "hydra/", "+hydra"))]
    chosen = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.is_sweep_override():
            chosen.append(f"{override.get_key_element()}={next(override.sweep_string_iterator())}")
        else:
            chosen.append(override.input_line)
    return chosen


def compose(overrides: list[str], user_dirs: list[Path] = ()) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if user_dirs:
        overrides = [*overrides, f"hydra.searchpath=[{','.join(f'file://{d.resolve()}' for d in user_dirs)}]"]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name="config", overrides=overrides)
    finally:
        GlobalHydra.instance().clear()


def unknown_key_message(key: str, overrides: list[str], user_dirs: list[Path] = ()) -> str:
    """One sentence for an override of a key the config lacks: the group it needs, or the near keys."""
    parts = key.lstrip("+~").split(".")
    others = [o for o in overrides if not re.match(rf"[+~]*{re.escape(key.lstrip('+~'))}=", o)]
    try:
        base = compose(others, user_dirs)
    except Exception:  # noqa: BLE001 - the other overrides are bad too; the first is named
        base = None
    if base is not None and parts[0] in REQUIRED_GROUPS and parts[0] not in base:
        return (
            f"{key} needs a {parts[0]}: add +{parts[0]}=<name>; available {parts[0]}s: "
            f"{', '.join(available(parts[0], user_dirs))}."
        )
    node = OmegaConf.select(base, ".".join(parts[:-1])) if base is not None and len(parts) > 1 else base
    keys = sorted(node.keys()) if isinstance(node, DictConfig) else []
    near = difflib.get_close_matches(parts[-1], keys, n=1)
    prefix = ".".join(parts[:-1] + [""])
    hint = f" (did you mean '{prefix}{near[0]}'?)" if near else ""
    listing = f"; valid keys of {'.'.join(parts[:-1]) or 'the config'}: {', '.join(keys)}" if keys else ""
    return f"unknown key '{key}'{hint}{listing}; +{key}=... would add a new one."


def composition_message(error: Exception, overrides: list[str], user_dirs: list[Path] = ()) -> str:
    text = str(error)
    if match := re.search(r"Could not override '([^']+)'", text):
        return unknown_key_message(match.group(1), overrides, user_dirs)
    if match := re.search(r"Could not append to config\. An item is already at '([^']+)'", text):
        return f"'{match.group(1)}' is already in the config: set it without '+' ({match.group(1)}=...)."
    return text.strip().splitlines()[0]


def preflight(arguments: list[str]) -> DictConfig | None:
    """The command line checked before Hydra runs it: the composed config of the (first) run, or None
    where Hydra's own flags name another config. Exits 2 with one sentence on the first bad value."""
    check_group_choices(arguments)
    names_another_config = any(a.split("=")[0] in CONFIG_FLAGS for a in arguments)
    if names_another_config or any(a in HELP_FLAGS for a in arguments):
        return None
    overrides, user_dirs = first_combination(arguments), user_config_dirs(arguments)
    if missing := [folder for folder in user_dirs if not folder.is_dir()]:
        fail(f"the config folder '{missing[0]}' does not exist; --config-dir names a folder of <group>/<name>.yaml.")
    try:
        cfg = compose(overrides, user_dirs)
    except Exception as error:  # noqa: BLE001 - Hydra's composition errors have no common base class
        fail(composition_message(error, overrides, user_dirs))
    check_required_groups(cfg, user_dirs)
    from peftbench.hub_models import complete_model_config
    from peftbench.validate import ConfigError, validate

    try:
        cfg.model = complete_model_config(cfg.model)
        validate(cfg)
    except ConfigError as error:
        fail(str(error))
    return cfg


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
    from peftbench.data import DataError
    from peftbench.measure import freeze_startup_objects
    from peftbench.recipe import run  # imported here so that usage errors answer fast
    from peftbench.records import NotWritableError
    from peftbench.validate import ConfigError

    freeze_startup_objects()

    try:
        record = run(cfg).record
    except (BudgetError, ConfigError, DataError, NotWritableError) as error:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise  # this job fails; the other jobs of the sweep go on
        fail(str(error))
    if record is None:  # a process other than the first of a run on several: it records nothing
        return None
    return record["metrics"]["final"][cfg.task.main_metric]  # for Hydra sweepers that optimise


def register_resolvers() -> None:
    """`${run_uid:}` in hydra.run.dir: runs started in the same second get folders of their own."""
    if not OmegaConf.has_resolver("run_uid"):
        OmegaConf.register_new_resolver("run_uid", lambda: f"{os.getpid()}", use_cache=True)


def main() -> None:
    answer_help(sys.argv[1:], __doc__)
    preflight(sys.argv[1:])
    register_resolvers()
    hydra_main()
