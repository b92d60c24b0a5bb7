"""S4 (Chen et al. 2023, "Parameter-Efficient Fine-Tuning Design Spaces", ICLR 2023): the method their
design-space search ends at. The model's layers form four consecutive groups G1..G4 in a spindle
pattern (the outer groups smaller than the middle ones), every group is tuned, and each group gets
its own combination of adapter, prefix, BitFit and LoRA; the paper's assignment is G1: adapter +
LoRA, G2: adapter + prefix, G3: adapter + prefix + BitFit, G4: prefix + BitFit + LoRA.

Layers are the model's transformer blocks in model order (an encoder-decoder's encoder blocks, then
its decoder blocks): the numbered containers holding the `ffn_out` modules. Spindle rule for L
layers: G1 and G4 take L/6 layers each, rounded half up (at least 1), and G2 and G3 split the rest,
G2 taking the odd one: 24 layers give 4-8-8-4, 12 give 2-4-4-2, 6 give 1-2-2-1.

Each strategy is peftbench's own part, restricted to its groups' layers: serial bottleneck adapters
on those layers' sub-layers, native LoRA (UniPELT's, ungated) on their query and value projections,
their own biases trained (BitFit; models without biases, LLaMA and T5, have none to train), and key/value
prefixes on their attentions through prefix_attention.py (the other attentions run without). The
record's method_state holds the grouping: each group's layers, strategies and stored parameters."""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch.nn as nn

from peftbench.methods import prefix_attention
from peftbench.methods.adapters import (
    AdapterConfig,
    BottleneckAdapter,
    check_adapter_config,
    place_adapters,
    set_module,
)
from peftbench.methods.modules import module_names_for_roles
from peftbench.methods.prefix_tuning import stored_prefixes
from peftbench.methods.registry import Arch, Method, register_method
from peftbench.methods.unipelt import GatedLoRA
from peftbench.methods.virtual_tokens import PREFIX_MODEL_TYPES

GROUPS = ("G1", "G2", "G3", "G4")
STRATEGIES = ("adapter", "prefix", "bitfit", "lora")
PAPER_GROUPS = {
    "G1": ["adapter", "lora"],
    "G2": ["adapter", "prefix"],
    "G3": ["adapter", "prefix", "bitfit"],
    "G4": ["prefix", "bitfit", "lora"],
}  # Chen et al. 2023's S4 (the strategy-assignment stage's result)
LAYER = re.compile(r"^.*?\.\d+(?=\.|$)")  # a module's layer: its name up to the first number (encoder.block.3)
SPINDLE_RULE = "G1 and G4 take L/6 layers each (rounded half up, at least 1); G2 and G3 split the rest, G2 the odd one"


@dataclass
class S4Config:
    groups: dict = field(default_factory=lambda: {group: list(s) for group, s in PAPER_GROUPS.items()})
    bottleneck: int = 8  # the adapters' m
    adapter_places: tuple = ("attn", "ffn")  # sub-layers with an adapter, in the adapter groups' layers
    non_linearity: str = "relu"
    lora_r: int = 8
    lora_alpha: float = 16.0  # the LoRA update is scaled by alpha / r
    lora_roles: tuple = ("q", "v")  # projections that get LoRA, by architecture role
    prefix_length: int = 10  # virtual key/value tokens at each attention of the prefix groups' layers
    prefix_projection: bool = True  # train the prefixes through an MLP (dropped after training)
    projection_hidden_size: int = 512

    def __post_init__(self):
        """Bad options fail as the config is built, before any model is."""
        if not isinstance(self.groups, Mapping):
            raise ValueError(f"S4 groups must map G1..G4 to lists of strategies, not {self.groups!r}.")
        if unknown := sorted(set(self.groups) - set(GROUPS)):
            raise ValueError(f"Unknown S4 group(s) {', '.join(map(str, unknown))}; valid: {', '.join(GROUPS)}.")
        for group, strategies in self.groups.items():
            if isinstance(strategies, str) or not isinstance(strategies, Sequence):
                raise ValueError(
                    f"S4 group {group} needs a list of strategies (e.g. [adapter, lora]), not {strategies!r}."
                )
            if unknown := [s for s in strategies if s not in STRATEGIES]:
                raise ValueError(
                    f"Unknown S4 strategy {', '.join(map(str, unknown))} in group {group}; "
                    f"valid: {', '.join(STRATEGIES)}."
                )
        check_adapter_config(AdapterConfig(non_linearity=self.non_linearity, places=self.adapter_places))


def spindle_sizes(layers: int) -> list[int]:
    """How many consecutive layers each of G1..G4 takes (SPINDLE_RULE)."""
    if layers < len(GROUPS):
        raise ValueError(f"S4 groups layers into four groups and needs at least 4 layers; the model has {layers}.")
    outer = max(1, (layers + 3) // 6)
    middle = layers - 2 * outer
    return [outer, middle - middle // 2, middle // 2, outer]


def layer_of(name: str) -> str | None:
    match = LAYER.match(name)
    return match.group(0) if match else None


def model_layers(model: nn.Module, arch: Arch) -> list[str]:
    """The model's transformer blocks in model order: the layers of its `ffn_out` modules."""
    return list(dict.fromkeys(layer_of(name) for name in module_names_for_roles(model, arch, ["ffn_out"])))


def group_layers(layers: list[str], groups: dict) -> dict[str, dict]:
    """Each group's layer indices and strategies; a group left out of `groups` is not tuned."""
    grouping, start = {}, 0
    for group, size in zip(GROUPS, spindle_sizes(len(layers))):
        grouping[group] = {"layers": list(range(start, start + size)), "strategies": list(groups.get(group, []))}
        start += size
    return grouping


def layers_with(strategy: str, layers: list[str], grouping: dict) -> set[str]:
    return {layers[i] for g in grouping.values() if strategy in g["strategies"] for i in g["layers"]}


def apply_s4(model: nn.Module, cfg: S4Config, arch: Arch) -> nn.Module:
    layers = model_layers(model, arch)
    grouping = group_layers(layers, cfg.groups)
    bitfit_layers = layers_with("bitfit", layers, grouping)
    biases = [  # collected before the adapters come in: the base's own biases
        module.bias
        for name, module in model.named_modules()
        if layer_of(name) in bitfit_layers and isinstance(getattr(module, "bias", None), nn.Parameter)
    ]
    adapters = AdapterConfig(bottleneck=cfg.bottleneck, non_linearity=cfg.non_linearity, places=cfg.adapter_places)
    adapter_layers = layers_with("adapter", layers, grouping)
    place_adapters(  # freezes the base first
        model,
        adapters,
        arch,
        lambda width, m: BottleneckAdapter(width, m, cfg.non_linearity, 1.0),
        keep=lambda name: layer_of(name) in adapter_layers,
    )
    for bias in biases:
        bias.requires_grad_(True)
    lora_layers = layers_with("lora", layers, grouping)
    for name in module_names_for_roles(model, arch, cfg.lora_roles):
        if layer_of(name) in lora_layers:
            set_module(model, name, GatedLoRA(model.get_submodule(name), cfg.lora_r, cfg.lora_alpha, gated=False))
    prefix_layers = layers_with("prefix", layers, grouping)
    attentions = [name for name in prefix_attention.attention_names(model, arch) if layer_of(name) in prefix_layers]
    if attentions:
        hidden_size = cfg.projection_hidden_size if cfg.prefix_projection else None
        prefix_attention.attach_prefixes(model, arch, cfg.prefix_length, hidden_size, names=attentions)
    model.s4_grouping = {"layers": layers, "groups": grouping}  # a plain attribute, for the record
    return model


def grouping_report(model: nn.Module) -> dict:
    """The grouping as the record keeps it: the rule, the layers, and per group its layer indices, its
    strategies and the parameters it stores after training (prefixes as the keys and values kept)."""
    layers, grouping = model.s4_grouping["layers"], model.s4_grouping["groups"]
    stored = dict.fromkeys(layers, 0)
    for name, parameter in model.named_parameters():
        if parameter.requires_grad and layer_of(name) in stored:
            stored[layer_of(name)] += parameter.numel()
    for name, module in model.named_modules():
        if getattr(module, "prefix_slot", None) is not None:
            group = module.prefix_slot[0]
            stored[layer_of(name)] += 2 * group.length * group.width
    groups = {
        group: {**part, "stored_parameters": sum(stored[layers[i]] for i in part["layers"])}
        for group, part in grouping.items()
    }
    return {"rule": SPINDLE_RULE, "layers": layers, "groups": groups}


register_method(
    Method(
        "s4",
        S4Config,
        apply_s4,
        family="hybrid",
        size_knob="bottleneck",
        model_types=PREFIX_MODEL_TYPES,
        stored_parameters=stored_prefixes,
        report=grouping_report,
    )
)
