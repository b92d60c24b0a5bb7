"""Checks of a composed run config before any work: each bad value fails in one sentence that names
it and the valid choices (the CLI exits 2), before a model is built or data is read."""

import importlib.util
import math

from peftbench.errors import ConfigError
from peftbench.local_files import SPLITS, local_file
from peftbench.tracking import TRACKER_MODES, TRACKERS, wandb_key_configured

DEVICE_TYPES = ("cpu", "cuda", "mps")
NAN_POLICIES = ("stop", "skip")  # trainer.nan_policy: what a non-finite loss does
PRECISIONS = ("fp32", "bf16", "fp16")  # trainer.precision: the forward passes' autocast dtype
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")  # model.attn_implementation; null: the default
OFFLINE_MODELS = "model=minilm_l6 or model=smollm2_135m"  # installed with peftbench: they need no hub


def value_at(cfg, dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = node.get(part) if node is not None else None
    return node


def is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_whole(cfg, dotted: str, minimum: int, optional: bool = False) -> None:
    value = value_at(cfg, dotted)
    if optional and value is None:
        return
    if not is_whole(value) or value < minimum:
        allowed = f"a whole number of at least {minimum}" + (" or null" if optional else "")
        raise ConfigError(f"{dotted}={value!r} is not valid: it must be {allowed}.")


def check_number(
    cfg, dotted: str, low: float, high: float | None = None, low_open: bool = False, optional: bool = False
) -> None:
    value = value_at(cfg, dotted)
    if optional and value is None:
        return
    above = is_number(value) and (value > low if low_open else value >= low)
    if not above or (high is not None and value >= high):
        bounds = f"{'above' if low_open else 'at least'} {low:g}"
        if high is not None:
            bounds += f" and below {high:g}"
        raise ConfigError(
            f"{dotted}={value!r} is not valid: it must be a number {bounds}{' or null' if optional else ''}."
        )


def check_choice(cfg, dotted: str, choices) -> None:
    value = value_at(cfg, dotted)
    if value not in choices:
        raise ConfigError(f"{dotted}={value!r} is not valid; valid: {', '.join(map(str, choices))}.")


def resolve_device(requested: str):
    """`auto` is cuda when available, else cpu; a device this machine lacks fails in one sentence."""
    import torch  # imported here: the checks before it answer in a fraction of a second

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise ConfigError(f"device={requested!r} is not valid; valid: auto, {', '.join(DEVICE_TYPES)} (cuda:<index>).")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={requested!r} is not available: this machine has no CUDA device; use device=auto or device=cpu."
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(
            f"device={requested!r} is not available: this machine has {torch.cuda.device_count()} CUDA device(s)."
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={requested!r} is not available on this machine; use device=auto or device=cpu.")
    return device


def check_precision(precision: str, device) -> None:
    """A precision the device cannot run fails in one sentence (a GPU without bf16: before Ampere)."""
    import torch

    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"trainer.precision=bf16 is not supported by {torch.cuda.get_device_name(device)}; "
            f"use trainer.precision=fp16 or fp32."
        )


def check_weights_reachable(model_cfg) -> None:
    """A pretrained model's files are there (an offline package, a local folder, the HF cache) or can be
    fetched: else one sentence, before any work, with the ways forward."""
    from pathlib import Path

    from peftbench.models import local_package_dir

    hub_id = model_cfg.hub_id
    if local_package_dir(model_cfg) or Path(str(hub_id)).is_dir():
        return
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        hf_hub_download(hub_id, "config.json")  # from the cache when it is there; a small file otherwise
    except GatedRepoError as error:
        raise ConfigError(
            f"Model '{model_cfg.name}' ({hub_id}) is gated on the Hugging Face hub: accept its licence there and "
            f"log in (`hf auth login`), or use {OFFLINE_MODELS}."
        ) from error
    except RepositoryNotFoundError as error:
        raise ConfigError(
            f"model.hub_id={hub_id!r} is not a model on the Hugging Face hub (nor a local folder); check the id, "
            f"or use {OFFLINE_MODELS}."
        ) from error
    except Exception as error:  # noqa: BLE001 - offline: no connection, HF_HUB_OFFLINE, no cached copy
        raise ConfigError(
            f"Model '{model_cfg.name}' ({hub_id}) could not be fetched: the hub cannot be reached and there is "
            f"no cached copy; use {OFFLINE_MODELS}, or model.pretrained=false for random weights (the record "
            f"says so)."
        ) from error


def check_processes(cfg) -> None:
    """A run launched on several processes (accelerate, torchrun) splits each batch across them."""
    from peftbench.distributed import world_size

    processes = world_size()
    if processes == 1:
        return
    if cfg.trainer.batch_size % processes:
        raise ConfigError(
            f"trainer.batch_size={cfg.trainer.batch_size} cannot be split across {processes} processes; make it a "
            f"multiple of {processes}."
        )
    if cfg.trainer.save_state_every_steps is not None or cfg.trainer.resume:
        raise ConfigError(
            "trainer.save_state_every_steps and trainer.resume work in a run of one process, not of "
            f"{processes}; leave them unset."
        )


def check_model(cfg) -> None:
    check_choice(cfg, "model.pretrained", (True, False))
    attn = cfg.model.get("attn_implementation")
    if attn is not None:
        check_choice(cfg, "model.attn_implementation", ATTN_IMPLEMENTATIONS)
    if attn == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise ConfigError(
            "model.attn_implementation=flash_attention_2 needs the flash-attn package, which is not installed "
            "(it runs on CUDA GPUs only); use sdpa or eager."
        )
    if cfg.trainer.gradient_checkpointing:
        from peftbench.models import model_class

        cls = model_class(cfg.model)
        if not cls.supports_gradient_checkpointing:
            raise ConfigError(
                f"trainer.gradient_checkpointing=true is not supported by {cls.__name__} (model "
                f"'{cfg.model.name}'); set it to false."
            )
    if cfg.model.pretrained:
        check_weights_reachable(cfg.model)


def check_trainer(cfg) -> None:
    for key in ("batch_size", "eval_batch_size", "grad_accum_steps", "max_seq_length", "log_every_steps"):
        check_whole(cfg, f"trainer.{key}", 1)
    check_whole(cfg, "trainer.max_steps", 1, optional=True)
    if cfg.trainer.max_steps is None:
        check_whole(cfg, "trainer.epochs", 1)
    check_whole(cfg, "trainer.save_state_every_steps", 1, optional=True)
    check_number(cfg, "trainer.lr", 0.0, low_open=True)
    check_number(cfg, "trainer.weight_decay", 0.0)
    check_number(cfg, "trainer.warmup_ratio", 0.0, 1.0)
    check_number(cfg, "trainer.max_grad_norm", 0.0, low_open=True, optional=True)
    check_choice(cfg, "trainer.nan_policy", NAN_POLICIES)
    check_choice(cfg, "trainer.precision", PRECISIONS)
    for key in (
        "resume",
        "eval_every_epoch",
        "eval_before_training",
        "group_by_length",
        "gradient_checkpointing",
        "compile",
    ):
        check_choice(cfg, f"trainer.{key}", (True, False))


ROLE_OPTIONS = ("target_modules", "feedforward_modules", "lora_roles")  # method options that list module roles


def check_roles(cfg, key: str, roles) -> None:
    """A method option naming module roles names roles the model config defines (conf/model/*.yaml `modules`)."""
    if roles is None:
        return
    valid = ", ".join(cfg.model.modules)
    if isinstance(roles, str):
        raise ConfigError(
            f"method.{key}={roles!r} is not valid: it must be a list of roles, e.g. [q, v]; valid: {valid}."
        )
    if unknown := [role for role in roles if role not in cfg.model.modules]:
        raise ConfigError(
            f"method.{key}={list(roles)} names unknown role(s) {', '.join(map(str, unknown))}; "
            f"model '{cfg.model.name}' defines: {valid}."
        )


def check_method(cfg) -> None:
    from peftbench.methods import get_method, method_options  # imported here: slow (peft, transformers)

    try:
        method = get_method(cfg.method.name)
    except KeyError as error:
        raise ConfigError(error.args[0]) from error
    try:
        options = method.make_config(method_options(cfg.method))
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from error
    if method.size_knob and getattr(options, method.size_knob) is not None:
        check_whole(cfg, f"method.{method.size_knob}", 1)
    for key in ROLE_OPTIONS:
        check_roles(cfg, key, getattr(options, key, None))
    try:
        method.check_serves(cfg.model)
        if method.check_trainer is not None:
            method.check_trainer(cfg.trainer)
    except ValueError as error:
        raise ConfigError(str(error)) from error


def check_tracker(cfg) -> None:
    check_choice(cfg, "tracker.name", TRACKERS)
    if cfg.tracker.name != "wandb":
        return
    check_choice(cfg, "tracker.mode", TRACKER_MODES)
    if cfg.tracker.mode == "online" and not wandb_key_configured():
        raise ConfigError(
            "tracker.mode=online needs a W&B API key (WANDB_API_KEY or `wandb login`); "
            "use tracker.mode=offline (sync later) or tracker=none."
        )


def check_data(cfg) -> None:
    if cfg.data_dir:
        for split in SPLITS:
            local_file(cfg.task, cfg.data_dir, split)


def validate(cfg):
    """Every check of a composed run config; raises ConfigError at the first bad value. Returns the
    torch device the run uses."""
    check_whole(cfg, "seed", 0)
    check_whole(cfg, "num_threads", 1, optional=True)
    check_choice(cfg, "force", (True, False))
    check_trainer(cfg)
    check_whole(cfg, "task.max_train_samples", 1, optional=True)
    check_whole(cfg, "task.max_eval_samples", 1, optional=True)
    check_number(cfg, "task.heldout_fraction", 0.0, 1.0, low_open=True, optional=True)
    if cfg.budget.params is not None and cfg.budget.share is not None:
        raise ConfigError(
            f"Budget '{cfg.budget.name}' sets both budget.params={cfg.budget.params} and "
            f"budget.share={cfg.budget.share}; set one of them."
        )
    check_tracker(cfg)
    check_data(cfg)  # before torch is imported: a missing file answers in a fraction of a second
    device = resolve_device(cfg.device)
    check_precision(cfg.trainer.precision, device)
    check_method(cfg)
    check_processes(cfg)
    check_model(cfg)  # last: it may ask the hub for the model's config file
    return device
