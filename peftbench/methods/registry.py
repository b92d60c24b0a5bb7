"""One registry of fine-tuning methods, filled by each method's module as it is imported."""

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn as nn

FAMILIES = ("baseline", "additive", "selective", "reparametrised", "hybrid")
COMMON_METHOD_KEYS = ("name", "lr")  # every method config has these; the rest are its options
# Model types whose attention and FFN projections are transformers' Conv1D (weight stored in x out), not nn.Linear:
# those whose modeling code in transformers 5.23 builds them from pytorch_utils.Conv1D (GPT-2 and the models built
# on it; CLVP's decoder MLP). tests/test_hub_models.py checks the table's model types against tiny models.
CONV1D_MODEL_TYPES = ("gpt2", "openai-gpt", "imagegpt", "decision_transformer", "clvp", "clvp_decoder")


def method_options(method_cfg) -> dict:
    """A method config's own options (everything but the keys every method has)."""
    from omegaconf import OmegaConf

    return {k: v for k, v in OmegaConf.to_container(method_cfg, resolve=True).items() if k not in COMMON_METHOD_KEYS}


DEFAULT_AUTO_CLASS = "sequence_classification"  # a model config without `auto_class` is a classifier


@dataclass(frozen=True)
class Arch:
    """Architecture knowledge a method needs, read from conf/model/*.yaml."""

    modules: dict[str, str]  # role (q, v, ffn_out ...) -> regex matched against module-name ends
    head: tuple[str, ...]  # names of the new task head's modules
    auto_class: str = DEFAULT_AUTO_CLASS  # the model's task: sequence_classification, causal_lm, seq2seq_lm
    tokenizer: str | None = None  # where the tokenizer comes from (prompt tuning's init from a text)


def no_step_hook(model: nn.Module, step: int, total_steps: int) -> None:
    return None


def no_start_hook(model: nn.Module, total_steps: int, train_loader) -> None:
    return None


def no_extra_loss(model: nn.Module):
    return None


@dataclass(frozen=True)
class Method:
    """A fine-tuning method: its options, how it changes a model, and its training hooks."""

    name: str
    config_cls: type
    apply: Callable[[nn.Module, Any, Arch], nn.Module]
    family: str
    # The integer option that sets the method's size (LoRA's r), for matched parameter budgets.
    size_knob: str | None = None
    # The smallest knob value the method takes (AdaLoRA's init_r must exceed its final rank, at least 1).
    size_knob_min: int = 1
    # Integer options a budget scales with the knob, keeping their configured ratio to it rounded down, at least 1
    # (AdaLoRA's target_r: the final rank stays 2/3 of init_r); the user's values, unscaled, without a budget.
    size_knob_followers: tuple[str, ...] = ()
    # The largest knob value the run's model can take (from the composed run config), or None.
    size_knob_limit: Callable[[Any], int | None] | None = None
    # Folds the method's weights into the base model (returns the plain merged model); None: cannot.
    merge: Callable[[nn.Module], nn.Module] | None = None
    # Keyword arguments for loading the base model (QLoRA's quantization_config), from the method's
    # config and the architecture; None: a plain load.
    load_options: Callable[[Any, Arch], dict] | None = None
    # Model types (transformers `model_type`) it can serve; None: any.
    model_types: tuple[str, ...] | None = None
    # The model tasks (conf/model's `auto_class`: sequence_classification, causal_lm, seq2seq_lm) it can serve;
    # None: any.
    auto_classes: tuple[str, ...] | None = None
    # True: it wraps only torch.nn.Linear targets (peft's OFT, SHiRA ... layers), so the model types whose
    # projections are Conv1D (CONV1D_MODEL_TYPES) are refused and every other type is served.
    linear_targets_only: bool = False
    # Called once before the optimizer is made and the parameters are counted, with the number of
    # optimizer steps the run will take and the training batches (FishMask's Fisher information and
    # FAR's importance scores are computed from them, and pick what trains).
    on_train_start: Callable[[nn.Module, int, Any], None] = no_start_hook
    # Called after every optimizer step, before gradients are cleared (AdaLoRA's rank allocation).
    on_step: Callable[[nn.Module, int, int], None] = no_step_hook
    # Returns a loss term added to the task loss, or None (DiffPruning's L0 penalty lives here).
    extra_loss: Callable[[nn.Module], Any] = no_extra_loss
    # Parameters that must be stored after training, where a training-only reparametrisation (prefix
    # MLP, P-tuning encoder) makes it differ from the trainable count; None: the trainable count.
    stored_parameters: Callable[[nn.Module], int] | None = None
    # What the record keeps about the tuned method itself (AdaLoRA's final ranks), or None.
    report: Callable[[nn.Module], dict] | None = None
    # The tensors that restore the tuned model on top of its base (DiffPruning's sparse diff: kept
    # indices and values); None: the trainable parameters.
    saved_state: Callable[[nn.Module], dict] | None = None
    # Called on a model loaded from a checkpoint with peft's from_pretrained, with the method's config: what
    # `apply` does besides peft's own wrapping that inference needs too (QLoRA's CPU layout guard); None: nothing.
    on_load: Callable[[nn.Module, Any], None] | None = None
    # Builds the optimizer from the model (as `apply` left it, its options with it) and the trainer config (lr,
    # weight_decay), for methods that live in the optimizer (LoRA+'s two learning rates, LoRA-FA's frozen A,
    # GaLore's projected moments); None: AdamW over the trainable parameters. The schedule is the same either way.
    make_optimizer: Callable[[nn.Module, Any], torch.optim.Optimizer] | None = None
    # Raises ValueError (one sentence) for trainer settings the method cannot train under, checked before any
    # work (LOMO's update inside the backward pass: no gradient accumulation, no fp16 loss scaling); None: any.
    check_trainer: Callable[[Any], None] | None = None

    @property
    def mergeable(self) -> bool:
        return self.merge is not None

    def check_model_type(self, model_type: str) -> None:
        if self.model_types is not None and model_type not in self.model_types:
            raise ValueError(
                f"Method '{self.name}' cannot serve model type '{model_type}'; "
                f"it supports: {', '.join(self.model_types)}."
            )
        if self.linear_targets_only and model_type in CONV1D_MODEL_TYPES:
            raise ValueError(
                f"Method '{self.name}' cannot serve model type '{model_type}'; it wraps only torch.nn.Linear "
                f"projections, and those of {', '.join(CONV1D_MODEL_TYPES)} are transformers' Conv1D."
            )

    def check_serves(self, model_cfg) -> None:
        """Raises ValueError (one sentence) for a model config this method cannot serve: its type or its task."""
        self.check_model_type(model_cfg["architecture"]["model_type"])
        self.check_auto_class(model_cfg.get("auto_class", DEFAULT_AUTO_CLASS))

    def check_auto_class(self, auto_class: str) -> None:
        if self.auto_classes is not None and auto_class not in self.auto_classes:
            raise ValueError(
                f"Method '{self.name}' cannot serve a {auto_class} model; it supports: {', '.join(self.auto_classes)}."
            )

    def make_config(self, options: dict) -> Any:
        valid = [f.name for f in fields(self.config_cls)]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ValueError(
                f"Unknown option(s) {', '.join(unknown)} for method '{self.name}'; "
                f"valid options: {', '.join(valid) or '(none)'}."
            )
        return self.config_cls(**options)


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    if method.name in METHODS:
        raise ValueError(f"Method '{method.name}' is registered twice.")
    if method.family not in FAMILIES:
        raise ValueError(f"Method '{method.name}' has family '{method.family}'; valid: {', '.join(FAMILIES)}.")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise KeyError(f"Unknown method '{name}'; available methods: {', '.join(sorted(METHODS))}.")
    return METHODS[name]
