"""UniPELT (Mao et al. 2022, "UniPELT: A Unified Framework for Parameter-Efficient Language Model
Tuning"): LoRA on the query and value projections, prefix tuning at every attention layer and a
bottleneck adapter after the FFN, each behind its own learned gate. A gate is a linear layer with a
sigmoid on the input of what it gates, averaged over the sequence: one value per example, that
scales the LoRA update, the prefix keys and values, or the adapter output.

LoRA and the gates are native here (the peft library has no gate); the adapter is peftbench's own;
the prefixes are the peft library's, wrapped around that model (peftbench's own on T5 and BART), and
gated by a hook on each attention module that scales its prefix keys and values before attention
reads them. `unipelt_nogate` is the paper's ablation: the same three parts, ungated."""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from peftbench.methods.adapters import BottleneckAdapter, PfeifferConfig, Wrapper, features, place_adapters, set_module
from peftbench.methods.modules import freeze_all, module_names_for_roles
from peftbench.methods.prefix_tuning import PrefixTuningConfig, add_prefixes, stored_prefixes
from peftbench.methods.registry import Arch, Method, register_method
from peftbench.methods.virtual_tokens import PREFIX_MODEL_TYPES

PARTS = ("adapter", "prefix", "lora")


@dataclass
class UniPeltConfig:
    parts: tuple = PARTS  # UniPELT (APL); [adapter, prefix] is the paper's UniPELT (AP)
    gates: bool = True  # false: the NoGate ablation
    lora_r: int = 8
    lora_alpha: float = 16.0  # the LoRA update is scaled by alpha / r (and by its gate)
    lora_roles: tuple = ("q", "v")  # projections that get LoRA, by architecture role
    prefix_length: int = 10  # virtual key/value tokens at every attention layer
    prefix_projection: bool = True  # train the prefixes through an MLP (dropped after training)
    projection_hidden_size: int = 512
    bottleneck: int = 48  # the FFN adapter's m (the paper: 768 / 16 on BERT-base)
    non_linearity: str = "relu"


@dataclass
class UniPeltNoGateConfig(UniPeltConfig):
    gates: bool = False


class Gate(nn.Module):
    """sigmoid(w . x + b) averaged over the sequence: x (batch, seq, width) -> (batch, 1, 1). It keeps the
    mean of the values it gave in the latest evaluation (since the model last went into eval mode)."""

    def __init__(self, width: int):
        super().__init__()
        self.linear = nn.Linear(width, 1)
        nn.init.normal_(self.linear.weight, std=0.02)  # as Mao et al.: gates start near 0.5
        nn.init.zeros_(self.linear.bias)
        self.value_sum, self.value_count = 0.0, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.linear(x)).mean(dim=-2, keepdim=True)
        if not self.training:
            self.value_sum += gate.detach().sum().item()
            self.value_count += gate.numel()
        return gate

    def train(self, mode: bool = True):
        if self.training and not mode:  # an evaluation starts: count afresh
            self.value_sum, self.value_count = 0.0, 0
        return super().train(mode)

    def mean_value(self) -> float | None:
        return self.value_sum / self.value_count if self.value_count else None


def ungated(x: torch.Tensor) -> float:
    return 1.0


class GatedLoRA(Wrapper):
    """The wrapped projection's output y becomes y + gate(x) * (alpha / r) * B A x, with B at zero at the start."""

    def __init__(self, base: nn.Module, r: int, alpha: float, gated: bool):
        super().__init__()
        parameter = next(base.parameters())
        self.base = base
        like = {"device": parameter.device, "dtype": parameter.dtype}
        self.lora_A = nn.Parameter(torch.empty(r, features(base, "in"), **like))
        self.lora_B = nn.Parameter(torch.zeros(features(base, "out"), r, **like))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as LoRA
        self.scaling = alpha / r
        self.gate = Gate(features(base, "in")).to(parameter.device) if gated else ungated

    def forward(self, x, *args, **kwargs):
        update = (x @ self.lora_A.T) @ self.lora_B.T
        return self.base(x, *args, **kwargs) + self.gate(x) * self.scaling * update


class GatedAdapter(nn.Module):
    def __init__(self, adapter: BottleneckAdapter, gated: bool):
        super().__init__()
        self.adapter = adapter
        self.gate = Gate(adapter.down.in_features) if gated else ungated

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(x) * self.adapter(x)


def layer_cache(cache, call_kwargs: dict, layer_idx: int):
    """The cache layer holding this attention's own keys and values (a self-attention's, never the
    encoder states a cross-attention reads), or None."""
    reads_encoder = any(call_kwargs.get(key) is not None for key in ("key_value_states", "encoder_hidden_states"))
    if cache is None or reads_encoder:
        return None
    cache = getattr(cache, "self_attention_cache", cache)
    return cache.layers[layer_idx] if layer_idx < len(cache.layers) else None


def gate_prefix_hook(attention: nn.Module, args: tuple, kwargs: dict) -> None:
    """Before attention: scale its prefix keys and values by the gate on its input. peftbench's own
    prefixes (T5, BART) take the scale as they enter attention; peft's sit in the cache, scaled there
    once per cache (peft builds a fresh one each forward pass; during generation later steps reuse it)."""
    hidden_states = args[0] if args else kwargs["hidden_states"]
    if getattr(attention, "prefix_slot", None) is not None:
        attention.prefix_scale = attention.prefix_gate(hidden_states).unsqueeze(1)  # (batch, 1, 1, 1)
        return
    layer = layer_cache(kwargs.get("past_key_values"), kwargs, attention.layer_idx)
    if layer is None or getattr(layer, "keys", None) is None or getattr(layer, "prefix_gated", False):
        return
    gate = attention.prefix_gate(hidden_states).unsqueeze(1)  # (batch, 1, 1, 1): over heads, positions, width
    layer.keys, layer.values = layer.keys * gate, layer.values * gate
    layer.prefix_gated = True


def attention_modules(model: nn.Module, arch: Arch) -> list[tuple[nn.Module, int]]:
    """(attention module, its input width) for every attention that takes prefixes: the parents of the
    query projections (on T5 and BART, those the model config names)."""
    query_names = module_names_for_roles(model, arch, ["q"])
    queries = {name.rpartition(".")[0]: model.get_submodule(name) for name in query_names}
    if "prefix_attn" in arch.modules:  # the model config names them where not every attention has them
        reached = set(module_names_for_roles(model, arch, ["prefix_attn"]))
        queries = {parent: query for parent, query in queries.items() if parent in reached}
    attentions = [(model.get_submodule(parent), features(query, "in")) for parent, query in queries.items()]
    for attention, _ in attentions:
        if getattr(attention, "layer_idx", None) is None:
            raise ValueError(
                f"UniPELT's prefix gate needs the attention's layer index; {type(attention).__name__} has none."
            )
    return attentions


def apply_unipelt(model: nn.Module, cfg: UniPeltConfig, arch: Arch) -> nn.Module:
    unknown = [part for part in cfg.parts if part not in PARTS]
    if unknown or not cfg.parts:
        raise ValueError(f"Unknown UniPELT part(s) {', '.join(unknown) or '(none)'}; valid: {', '.join(PARTS)}.")
    freeze_all(model)
    if "adapter" in cfg.parts:
        place_adapters(
            model,
            PfeifferConfig(bottleneck=cfg.bottleneck, non_linearity=cfg.non_linearity),
            arch,
            lambda width, m: GatedAdapter(BottleneckAdapter(width, m, cfg.non_linearity, 1.0), cfg.gates),
        )
    if "lora" in cfg.parts:
        for name in module_names_for_roles(model, arch, cfg.lora_roles):
            set_module(model, name, GatedLoRA(model.get_submodule(name), cfg.lora_r, cfg.lora_alpha, cfg.gates))
    if "prefix" not in cfg.parts:
        return model
    if cfg.gates:
        for attention, width in attention_modules(model, arch):
            attention.prefix_gate = Gate(width).to(next(attention.parameters()).device)
            attention.register_forward_pre_hook(gate_prefix_hook, with_kwargs=True)
    prefixes = PrefixTuningConfig(
        num_virtual_tokens=cfg.prefix_length,
        projection=cfg.prefix_projection,
        projection_hidden_size=cfg.projection_hidden_size,
    )
    return add_prefixes(model, prefixes, arch)


def gate_values(model: nn.Module) -> dict:
    """The mean value of every gate over the latest evaluation, by part and module, and per part."""
    gates = {part: {} for part in PARTS}
    for name, module in model.named_modules():
        if isinstance(module, GatedLoRA) and isinstance(module.gate, Gate):
            gates["lora"][name] = module.gate.mean_value()
        elif isinstance(module, GatedAdapter) and isinstance(module.gate, Gate):
            gates["adapter"][name] = module.gate.mean_value()
        elif isinstance(getattr(module, "prefix_gate", None), Gate):
            gates["prefix"][name] = module.prefix_gate.mean_value()
    means = {}
    for part, values in gates.items():
        seen = [v for v in values.values() if v is not None]
        means[part] = sum(seen) / len(seen) if seen else None
    return {
        "gated": any(gates.values()),
        "mean_gate": means,
        "gates": {part: v for part, v in gates.items() if v},
        "measured_on": "the final evaluation pass",
    }


for name, config_cls in (("unipelt", UniPeltConfig), ("unipelt_nogate", UniPeltNoGateConfig)):
    register_method(
        Method(
            name,
            config_cls,
            apply_unipelt,
            family="hybrid",
            size_knob="bottleneck",
            model_types=PREFIX_MODEL_TYPES,
            stored_parameters=stored_prefixes,
            report=gate_values,
        )
    )
