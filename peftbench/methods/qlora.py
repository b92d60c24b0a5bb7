"""QLoRA (Dettmers et al. 2023): LoRA on a frozen base quantized by bitsandbytes while loading, to
4-bit NormalFloat with double quantization (or 8-bit). The new task head stays unquantized. Runs on
CPU and CUDA."""

from dataclasses import dataclass, field

import peft
import torch
import torch.nn as nn
from transformers import BitsAndBytesConfig

from peftbench.measure import logical_numel
from peftbench.methods.lora import LoraConfig, apply_lora, merge_lora
from peftbench.methods.registry import Arch, Method, register_method

QUANT_TYPES = ("nf4", "fp4")
COMPUTE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass
class QLoraConfig(LoraConfig):
    bits: int = 4                 # 4 (NF4/FP4) or 8 (LLM.int8)
    quant_type: str = "nf4"       # 4-bit data type
    double_quant: bool = True     # quantize the quantization constants too (about 0.4 bit per weight saved)
    compute_dtype: str = "float32"  # dtype of the de-quantized matmuls: float32 | bfloat16
    target_modules: list[str] = field(default_factory=lambda: ["q", "k", "v", "attn_out", "ffn_in", "ffn_out"])


def quantization_options(cfg: QLoraConfig, arch: Arch) -> dict:
    if cfg.bits not in (4, 8):
        raise ValueError(f"QLoRA bits must be 4 or 8, not {cfg.bits}.")
    if cfg.quant_type not in QUANT_TYPES or cfg.compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"QLoRA quant_type '{cfg.quant_type}' / compute_dtype '{cfg.compute_dtype}' unknown; "
                         f"valid: {', '.join(QUANT_TYPES)} / {', '.join(COMPUTE_DTYPES)}.")
    return {"quantization_config": BitsAndBytesConfig(
        load_in_4bit=cfg.bits == 4, load_in_8bit=cfg.bits == 8, bnb_4bit_quant_type=cfg.quant_type,
        bnb_4bit_use_double_quant=cfg.double_quant, bnb_4bit_compute_dtype=COMPUTE_DTYPES[cfg.compute_dtype],
        llm_int8_skip_modules=list(arch.head))}  # the new head trains in full precision


def apply_qlora(model: nn.Module, cfg: QLoraConfig, arch: Arch) -> nn.Module:
    model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return apply_lora(model, cfg, arch)


def quantization_report(model: nn.Module) -> dict:
    config = model.get_base_model().config.quantization_config
    quantized = [p for p in model.parameters() if p.dtype in (torch.uint8, torch.int8)]
    quantized_bytes = sum(p.numel() * p.element_size() for p in quantized)
    unquantized_bytes = sum(4 * logical_numel(p) for p in quantized)  # the same weights in fp32
    quantization = {"bits": 4 if config.load_in_4bit else 8, "skipped_modules": list(config.llm_int8_skip_modules or [])}
    if config.load_in_4bit:  # the 4-bit options; 8-bit (LLM.int8) takes none of them
        quantization |= {"quant_type": config.bnb_4bit_quant_type, "double_quant": config.bnb_4bit_use_double_quant,
                         "compute_dtype": str(config.bnb_4bit_compute_dtype)}
    return {"quantization": quantization,
            "quantized_weights_bytes": quantized_bytes, "fp32_weights_bytes": unquantized_bytes,
            "weight_memory_saved_bytes": unquantized_bytes - quantized_bytes}


# Merging de-quantizes, adds the update and re-quantizes: lossy, and the run's merge check says by how much.
for name in ("qlora", "qlora_8bit"):
    register_method(Method(name, QLoraConfig, apply_qlora, family="reparametrised", size_knob="r", merge=merge_lora,
                           load_options=quantization_options, report=quantization_report))
