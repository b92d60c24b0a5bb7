"""LoRA (Hu et al. 2021) and its variants through the peft library: DoRA (weight-decomposed,
Liu et al. 2024) and rsLoRA (rank-stabilised scaling alpha/sqrt(r), Kalajdzievski 2023) as their own
names and config classes, and initialisations as `init`: PiSSA (principal singular vectors, Meng et al. 2024;
`pissa_niter_<n>` by n iterations of fast SVD), OLoRA (QR of the weight), orthogonal (A and B from orthogonal
halves, BA = 0), EVA (Paulo et al. 2024: A from the singular vectors of each target's input activations on
training batches, ranks redistributed by explained variance; in `on_train_start`), LoftQ (Li et al. 2023: the
base weight W replaced by its `loftq_bits`-bit NF4 (or int8) quantization Q, and B A from the SVD of W - Q, over
`loftq_iter` alternating rounds, so that Q + BA starts close to W; `loftq_init` below), CorDA (Yang et al. 2024:
B A from the SVD of W C, C the covariance of each target's inputs on `corda_batches` training batches, its top r
components (`corda_mode=ipm`) or its smallest (`kpm`), W keeping the rest; in `on_train_start`)."""

import itertools
import re
from dataclasses import dataclass, field

import peft
import torch
import torch.nn as nn
from peft.tuners.lora import LoraLayer
from peft.tuners.lora.config import CordaConfig
from peft.tuners.lora.corda import preprocess_corda
from transformers.pytorch_utils import Conv1D

from peftbench.formats import IGNORE
from peftbench.methods.modules import module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method

INITS = ("default", "gaussian", "orthogonal", "pissa", "pissa_niter_<n>", "olora", "eva", "loftq", "corda")
LOFTQ_BITS = (4, 8)
CORDA_MODES = ("ipm", "kpm")  # instruction-previewed: the top r components of W C; knowledge-preserved: the smallest
PISSA_FAST_SVD = re.compile(r"pissa_niter_[1-9][0-9]*")  # pissa_niter_<n>: n subspace iterations


@dataclass
class LoraConfig:
    r: int = 8
    alpha: float = 16
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: ["q", "v"])
    use_dora: bool = False
    use_rslora: bool = False
    init: str = "default"
    loftq_bits: int = 4  # init=loftq: the base weights' quantization, 4 (NF4) or 8 (int8) bits
    loftq_iter: int = 1  # init=loftq: alternating rounds of quantizing and fitting B A to what is left
    corda_mode: str = "ipm"  # init=corda: ipm (B A from W C's top r components) or kpm (its smallest r), as peft
    corda_batches: int = 8  # init=corda: training batches the input covariance C is collected over (not the paper's)

    def __post_init__(self):  # checked when the config is made: a bad value fails before the model is built
        if self.init not in INITS and not PISSA_FAST_SVD.fullmatch(self.init):
            raise ValueError(f"Unknown LoRA init '{self.init}'; valid: {', '.join(INITS)}.")
        if self.loftq_bits not in LOFTQ_BITS or self.loftq_iter < 1:
            raise ValueError(
                f"LoftQ needs loftq_bits in {', '.join(map(str, LOFTQ_BITS))} and loftq_iter >= 1; "
                f"got {self.loftq_bits} and {self.loftq_iter}."
            )
        if self.corda_mode not in CORDA_MODES or self.corda_batches < 1:
            raise ValueError(
                f"CorDA needs corda_mode in {', '.join(CORDA_MODES)} and corda_batches >= 1; "
                f"got '{self.corda_mode}' and {self.corda_batches}."
            )


@dataclass
class DoRAConfig(LoraConfig):
    use_dora: bool = True  # a trained magnitude per output unit of each target matrix; slower steps than LoRA


@dataclass
class RsLoraConfig(LoraConfig):
    use_rslora: bool = True  # scale alpha/sqrt(r) instead of alpha/r


def apply_lora(model: nn.Module, cfg: LoraConfig, arch: Arch) -> nn.Module:
    targets = module_names_for_roles(model, arch, cfg.target_modules)
    eva_config = None
    if cfg.init == "eva":  # a classifier's labels are one per example, not per token: no label mask
        eva_config = peft.EvaConfig(use_label_mask=arch.auto_class != "sequence_classification")
    peft_config = peft.LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        bias="none",
        use_dora=cfg.use_dora,
        use_rslora=cfg.use_rslora,
        init_lora_weights=True if cfg.init in ("default", "loftq", "corda") else cfg.init,  # loftq, corda: later
        eva_config=eva_config,
        # GPT-2's Conv1D stores its weight transposed (in x out)
        fan_in_fan_out=any(isinstance(model.get_submodule(name), Conv1D) for name in targets),
    )
    model = peft.get_peft_model(model, peft_config)
    if cfg.init == "loftq":
        loftq_init(model, cfg, set_adapter=True)
    if cfg.init == "corda":
        model.corda_options = cfg  # CorDA needs the training batches: `initialize_corda`, in on_train_start
    return model


def quantized_and_back(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """The weight as its bits-bit quantization holds it: NF4 in blocks of 64 (bitsandbytes, as QLoRA stores
    weights) or int8 per row."""
    import bitsandbytes.functional as bnb

    if bits == 4:
        packed, state = bnb.quantize_4bit(weight, blocksize=64, compress_statistics=False, quant_type="nf4")
        return bnb.dequantize_4bit(packed, state, quant_type="nf4")
    rows, scales, _ = bnb.int8_vectorwise_quant(weight)
    return bnb.int8_vectorwise_dequant(rows, scales)


@torch.no_grad()
def loftq_init(model: nn.Module, cfg: LoraConfig, set_adapter: bool) -> None:
    """LoftQ on every LoRA target, on the weights' own device: peft 0.21's `loftq_init` (peft/utils/loftq_utils.py),
    whose rounds this follows, moves the weight to cuda. Each round quantizes what B A does not hold (W - B A) and
    refits B A, rank r, to W - Q by SVD; the base weight becomes the last Q. B is divided by the layer's scaling
    (peft's leaves it out), so that Q + scaling B A, not Q + B A, starts close to W. With `set_adapter` False only
    the base weight is rewritten: the rounds are deterministic, so a checkpoint's base is rebuilt from the
    original weights when it loads (`on_load`)."""
    for layer in (m for m in model.modules() if isinstance(m, LoraLayer) and "default" in m.lora_A):
        base = layer.get_base_layer()
        transposed = getattr(base, "fan_in_fan_out", False) or isinstance(base, Conv1D)  # GPT-2: in x out
        weight = (base.weight.T if transposed else base.weight).float()
        rank, residual = layer.r["default"], weight.clone()
        for _ in range(cfg.loftq_iter):
            quantized = quantized_and_back(residual, cfg.loftq_bits)
            U, S, Vh = torch.linalg.svd(weight - quantized, full_matrices=False)
            left, right = U[:, :rank] * S[:rank].sqrt(), S[:rank].sqrt()[:, None] * Vh[:rank]  # W - Q ~ left right
            residual = weight - left @ right
        base.weight.data = (quantized.T if transposed else quantized).to(base.weight.dtype)
        if set_adapter:
            layer.lora_A["default"].weight.data = right.to(layer.lora_A["default"].weight.dtype)
            layer.lora_B["default"].weight.data = (left / layer.scaling["default"]).to(
                layer.lora_B["default"].weight.dtype
            )


def rebuild_loftq_base(model: nn.Module, cfg: LoraConfig) -> None:
    """A loaded checkpoint of init=loftq: the base weights quantized as they were in training."""
    if cfg.init == "loftq":
        loftq_init(model, cfg, set_adapter=False)


def initialize_from_data(model: nn.Module, total_steps: int, train_loader) -> None:
    """on_train_start: the inits that read training batches (eva, corda) run here; the others have run."""
    initialize_eva(model, total_steps, train_loader)
    if hasattr(model, "corda_options"):
        initialize_corda(model, train_loader)


@torch.no_grad()
def run_examples_one_at_a_time(model: nn.Module, train_loader, batches: int) -> None:
    """Forward passes over the first `batches` training batches, an example per pass without its padding: peft's
    CorDA hook takes one sequence per call (its calibration examples come alone) and scales each by its maximum.
    Labels are passed only to an encoder-decoder, whose decoder reads them."""
    device = next(model.parameters()).device
    encoder_decoder = getattr(model.get_base_model().config, "is_encoder_decoder", False)
    for batch in itertools.islice(train_loader, batches):
        real = batch["attention_mask"].bool()
        for i in range(len(real)):
            example = {key: value[i, real[i]][None].to(device) for key, value in batch.items() if key != "labels"}
            if encoder_decoder:
                labels = batch["labels"][i]
                example["labels"] = labels[labels != IGNORE][None].to(device)
            model(**example)


@torch.no_grad()
def initialize_corda(model: nn.Module, train_loader) -> None:
    """init=corda, with peft's own CorDA code. peft's preprocess_corda takes the base model before get_peft_model;
    the adapter exists by now, so it preprocesses the base layers inside the LoRA layers instead: the covariance C
    of each one's inputs over `corda_batches` batches (adapters off, dropout off), the SVD of W C and its top (ipm)
    or smallest (kpm) r components. Then each layer's own `corda_init` writes A, B and the residual base W - scaling
    B A, and DoRA's magnitudes are recomputed from it, in the order of peft's update_layer. The config then reads
    init_lora_weights=corda, which peft's save converts to an adapter on the original base."""
    cfg = model.corda_options
    layers = {name: m for name, m in model.get_base_model().named_modules() if isinstance(m, LoraLayer)}
    corda_config = peft.LoraConfig(
        r=cfg.r,
        target_modules=[f"{name}.base_layer" for name in layers],  # the weights that LoRA layers wrap
        init_lora_weights="corda",
        corda_config=CordaConfig(corda_method=cfg.corda_mode),
    )
    was_training = model.training
    with model.disable_adapter():
        preprocess_corda(
            model.get_base_model(),  # put in eval mode by preprocess_corda
            corda_config,
            run_model=lambda: run_examples_one_at_a_time(model, train_loader, cfg.corda_batches),
        )
    model.train(was_training)
    for layer in layers.values():
        layer.corda_init("default", "corda")
        if "default" in layer.lora_variant:  # DoRA: the magnitudes of W_res + scaling B A
            layer.lora_variant["default"].init(layer, adapter_name="default")
    # corda_config stays unset: peft warns when a saved config has one beside the converted adapter's init=True
    model.peft_config["default"].init_lora_weights = "corda"
    del model.corda_options


def initialize_eva(model: nn.Module, total_steps: int, train_loader) -> None:
    """init=eva: A from the training batches' activations, before the optimizer is made (peft's
    initialize_lora_eva_weights, which also sets each matrix's rank); other inits: nothing."""
    if model.peft_config["default"].init_lora_weights != "eva":
        return
    device = next(model.parameters()).device

    def forward(model, batch):
        return model(**{key: value.to(device) for key, value in batch.items()})

    peft.initialize_lora_eva_weights(model, train_loader, forward_fn=forward, show_progress_bar=False)


def merge_lora(model: nn.Module) -> nn.Module:
    return model.merge_and_unload()  # W <- W + (alpha/r) B A; the plain transformers model remains


for name, config_cls in (("lora", LoraConfig), ("dora", DoRAConfig), ("rslora", RsLoraConfig)):
    register_method(
        Method(
            name,
            config_cls,
            apply_lora,
            family="reparametrised",
            size_knob="r",
            merge=merge_lora,
            on_train_start=initialize_from_data,
            on_load=rebuild_loftq_base,
        )
    )
