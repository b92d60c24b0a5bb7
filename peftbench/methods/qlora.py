"""QLoRA (Dettmers et al. 2023): LoRA on a frozen base quantized by bitsandbytes while loading, to
4-bit NormalFloat with double quantization (or 8-bit: `qlora_8bit`). The new task head stays unquantized. Runs on
CPU and CUDA."""

import copy
from dataclasses import dataclass, field

import peft
import torch
import torch.nn as nn
from transformers import BitsAndBytesConfig

from peftbench.measure import logical_numel
from peftbench.methods.lora import LoraConfig, apply_lora, merge_lora
from peftbench.methods.registry import Arch, Method, register_method

QUANT_TYPES = ("nf4", "fp4")
COMPUTE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class QLoraConfig(LoraConfig):
    bits: int = 4  # 4 (NF4/FP4) or 8 (LLM.int8)
    quant_type: str = "nf4"  # 4-bit data type
    double_quant: bool = True  # quantize the quantization constants too (about 0.4 bit per weight saved)
    # dtype of the de-quantized matmuls: float32 | bfloat16 | float16, or auto: the run's trainer.precision
    compute_dtype: str = "auto"
    target_modules: list[str] = field(default_factory=lambda: ["q", "k", "v", "attn_out", "ffn_in", "ffn_out"])

    def __post_init__(self):
        super().__post_init__()
        # LoftQ writes a quantized copy into a full-precision base, CorDA a full-precision residual; this base is not
        if self.init in ("loftq", "corda"):
            raise ValueError(f"QLoRA quantizes the base itself: init={self.init} is for lora (and its variants) only.")


@dataclass
class QLora8bitConfig(QLoraConfig):
    bits: int = 8  # LLM.int8: half the weight memory saving of 4-bit, closer to full precision


def quantization_options(cfg: QLoraConfig, arch: Arch) -> dict:
    if cfg.bits not in (4, 8):
        raise ValueError(f"QLoRA bits must be 4 or 8, not {cfg.bits}.")
    if cfg.quant_type not in QUANT_TYPES or cfg.compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(
            f"QLoRA quant_type '{cfg.quant_type}' / compute_dtype '{cfg.compute_dtype}' unknown; "
            f"valid: {', '.join(QUANT_TYPES)} / {', '.join(COMPUTE_DTYPES)}."
        )
    return {
        "quantization_config": BitsAndBytesConfig(
            load_in_4bit=cfg.bits == 4,
            load_in_8bit=cfg.bits == 8,
            bnb_4bit_quant_type=cfg.quant_type,
            bnb_4bit_use_double_quant=cfg.double_quant,
            bnb_4bit_compute_dtype=COMPUTE_DTYPES[cfg.compute_dtype],
            llm_int8_skip_modules=list(arch.head),
        )
    }  # the new head trains in full precision


# bitsandbytes, on a CPU with AVX512-BF16, repacks a 4-bit weight into a CPU layout the first time the
# layer runs in eval mode without gradients, and from then on computes that layer in bfloat16. The
# packed layout cannot train (matmul_4bit adds the bias in place) nor be de-quantized for a merge, its
# inverse is lossy (the scales pass through bfloat16), and the repack fails on layers narrower than a
# quantization block. peftbench lets it run only where it is what the user asked for
# (compute_dtype=bfloat16) and the layer's shape fits, and puts the layer's own standard-layout weight
# back before it trains or merges: the same numbers on every CPU, however often it evaluates.
CPU_PACK_BLOCK_N = 32  # bitsandbytes' _convert_weight_packed_for_cpu: out_features in blocks of 32


def linear_4bit_layers(model: nn.Module) -> list[nn.Module]:
    import bitsandbytes as bnb  # imported here: only QLoRA needs it

    return [module for module in model.modules() if isinstance(module, bnb.nn.Linear4bit)]


def is_cpu_packed(layer: nn.Module) -> bool:
    return bool(getattr(layer.weight.quant_state, "packing_format_for_cpu", False))


def cpu_packable(layer: nn.Module, compute_dtype: torch.dtype) -> bool:
    """Whether bitsandbytes' CPU bf16 layout may serve this layer's inference."""
    blocksize = layer.weight.quant_state.blocksize
    fits = layer.in_features % blocksize == 0 and layer.out_features % CPU_PACK_BLOCK_N == 0
    return fits and compute_dtype == torch.bfloat16


def restore_standard_layout(layer: nn.Module) -> None:
    """The weight and quantization state the layer had before bitsandbytes repacked them (exact)."""
    if is_cpu_packed(layer):
        layer.weight.data, layer.weight.quant_state = layer.standard_layout


def keep_standard_layout(layer: nn.Module, args) -> None:
    """Forward pre-hook: remembers the standard layout while the layer has it (the repack replaces the
    tensor and edits the state in place, so a shallow copy keeps the original), and puts it back
    before a forward that trains or passes gradients."""
    if not is_cpu_packed(layer):
        layer.standard_layout = (layer.weight.data, copy.copy(layer.weight.quant_state))
    elif layer.training or args[0].requires_grad:
        restore_standard_layout(layer)


def guard_cpu_packing(model: nn.Module, compute_dtype: torch.dtype) -> None:
    for layer in linear_4bit_layers(model):
        layer.support_avx512bf16_for_cpu = layer.support_avx512bf16_for_cpu and cpu_packable(layer, compute_dtype)
        if layer.support_avx512bf16_for_cpu:
            layer.register_forward_pre_hook(keep_standard_layout)


def apply_qlora(model: nn.Module, cfg: QLoraConfig, arch: Arch) -> nn.Module:
    model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    guard_cpu_packing(model, COMPUTE_DTYPES[cfg.compute_dtype])
    return apply_lora(model, cfg, arch)


def guard_loaded(model: nn.Module, cfg: QLoraConfig) -> None:
    guard_cpu_packing(model, COMPUTE_DTYPES[cfg.compute_dtype])


def merge_qlora(model: nn.Module) -> nn.Module:
    """De-quantizes (from the standard layout), adds the update and re-quantizes."""
    for layer in linear_4bit_layers(model):
        restore_standard_layout(layer)
    return merge_lora(model)


def quantization_report(model: nn.Module) -> dict:
    config = model.get_base_model().config.quantization_config
    quantized = [p for p in model.parameters() if p.dtype in (torch.uint8, torch.int8)]
    quantized_bytes = sum(p.numel() * p.element_size() for p in quantized)
    unquantized_bytes = sum(4 * logical_numel(p) for p in quantized)  # the same weights in fp32
    quantization = {
        "bits": 4 if config.load_in_4bit else 8,
        "skipped_modules": list(config.llm_int8_skip_modules or []),
    }
    if config.load_in_4bit:  # the 4-bit options; 8-bit (LLM.int8) takes none of them
        layers = linear_4bit_layers(model)
        quantization |= {
            "quant_type": config.bnb_4bit_quant_type,
            "double_quant": config.bnb_4bit_use_double_quant,
            "compute_dtype": str(config.bnb_4bit_compute_dtype),
            # layers whose inference may use bitsandbytes' CPU bf16 layout (AVX512-BF16 CPUs)
            "cpu_bf16_packed_layers": sum(layer.support_avx512bf16_for_cpu for layer in layers),
        }
    return {
        "quantization": quantization,
        "quantized_weights_bytes": quantized_bytes,
        "fp32_weights_bytes": unquantized_bytes,
        "weight_memory_saved_bytes": unquantized_bytes - quantized_bytes,
    }


# Merging de-quantizes, adds the update and re-quantizes: lossy, and the run's merge check says by how much.
for name, config_cls in (("qlora", QLoraConfig), ("qlora_8bit", QLora8bitConfig)):
    register_method(
        Method(
            name,
            config_cls,
            apply_qlora,
            family="reparametrised",
            size_knob="r",
            merge=merge_qlora,
            load_options=quantization_options,
            report=quantization_report,
            on_load=guard_loaded,
        )
    )
