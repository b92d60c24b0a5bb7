"""A run resolved once: the method, its config, the architecture and the task format are derived from
the composed config in one place (`plan_run`), and every part of the run path (the recipe, matched
budgets, the count tool) applies a method to a model through `apply_method` here.

This module sits below `recipe`, `budget` and `count`; it imports none of them."""

import dataclasses
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from peftbench import data
from peftbench.formats import Format, get_format
from peftbench.methods import Arch, Method, get_method, method_options
from peftbench.methods.modules import unfreeze_head
from peftbench.methods.registry import DEFAULT_AUTO_CLASS
from peftbench.models import build_model, model_source, shapes_only

DEFAULT_NUM_LABELS = 2  # a model built without a task (the count tool) gets a two-way head


@dataclass(frozen=True)
class RunPlan:
    """Everything the config decides about a run, before any work."""

    cfg: DictConfig  # the composed config, with a budget's size knob already set
    method: Method
    method_config: Any  # the method's own config dataclass, from its options
    arch: Arch
    num_labels: int
    format: Format | None  # how the task meets the model; None without a task (the count tool)
    max_length: int | None  # tokens per example; None without a task

    @property
    def load_options(self) -> dict:
        """Keyword arguments for loading the base model as the method needs it (QLoRA's quantization)."""
        if self.method.load_options is None:
            return {}
        return self.method.load_options(self.method_config, self.arch)


def arch_of(model_cfg) -> Arch:
    return Arch(
        modules=dict(model_cfg.modules),
        head=tuple(model_cfg.head),
        auto_class=model_cfg.get("auto_class", DEFAULT_AUTO_CLASS),
        tokenizer=model_cfg.tokenizer or model_source(model_cfg),
    )


def max_length(cfg: DictConfig) -> int:
    return cfg.task.get("max_seq_length") or cfg.trainer.max_seq_length  # long inputs (dialogues) set their own


# trainer.precision -> the dtype a method computes in when its config says compute_dtype=auto (QLoRA)
COMPUTE_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def method_config(cfg: DictConfig, method: Method):
    """The method's config from its options; a `compute_dtype` of auto follows the run's precision."""
    config = method.make_config(method_options(cfg.method))
    if getattr(config, "compute_dtype", None) == "auto":
        precision = cfg.get("trainer", {}).get("precision", "fp32")
        config = dataclasses.replace(config, compute_dtype=COMPUTE_DTYPES[precision])
    return config


def plan_run(cfg: DictConfig, method: Method | None = None) -> RunPlan:
    """The run's pieces, derived once. `method` overrides the registry's (tests swap in hooks)."""
    method = method or get_method(cfg.method.name)
    arch = arch_of(cfg.model)
    task = cfg.get("task")
    if task is None:
        return RunPlan(
            cfg,
            method,
            method_config(cfg, method),
            arch,
            DEFAULT_NUM_LABELS,
            format=None,
            max_length=None,
        )
    return RunPlan(
        cfg,
        method,
        method_config(cfg, method),
        arch,
        data.num_labels(task),
        format=get_format(arch.auto_class, task),
        max_length=max_length(cfg),
    )


def build_base(plan: RunPlan):
    """The base model (loaded as the method needs it, e.g. quantized) and its tokenizer."""
    return build_model(plan.cfg.model, plan.num_labels, plan.load_options)


def apply_method(model, plan: RunPlan):
    """The planned method applied to a base model, with a new task head trainable."""
    model = plan.method.apply(model, plan.method_config, plan.arch)
    if plan.format is not None and plan.format.new_head:
        unfreeze_head(model, plan.arch)
    return model


class NotCountable(ValueError):
    """A method that reads the base weights as it is set up (FRoD's shared basis): the meta device has none."""


def apply_on_meta(model, plan: RunPlan):
    """apply_method on a meta-device model, for its exact counts; NotCountable where the method reads a weight."""
    try:
        with shapes_only():
            return apply_method(model, plan)
    except NotImplementedError as error:  # torch's "Cannot copy out of meta tensor"
        if "meta tensor" not in str(error):
            raise
        raise NotCountable(
            f"Method '{plan.method.name}' reads the base model's weights as it is set up, so its size cannot be "
            "counted on the meta device"
        ) from error
