"""Bottleneck adapters, written natively (the peft library has none; AdapterHub's `adapters` cannot
share this environment): Houlsby et al. 2019 (serial, after attention and FFN), Pfeiffer et al. 2021
(serial, after the FFN), He et al. 2022's parallel adapter and its scaled variant.

Where they go comes from the model config's roles, not from names in this code: a serial adapter
wraps the module of role `attn_out` or `ffn_out` and adds adapter(y) to its output y; a parallel
adapter reads the sub-layer's input (the input of the nearest preceding `q` or `ffn_in` module) and
adds s * adapter(x) to the sub-layer's output (`attn_out` or `ffn_out`)."""

from dataclasses import dataclass

import torch
import torch.nn as nn

from peftbench.methods.modules import freeze_all, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method

NON_LINEARITIES = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "swish": nn.SiLU}
PLACES = {
    "attn": ("q", "attn_out"),
    "ffn": ("ffn_in", "ffn_out"),
}  # sub-layer -> (its input's role, its output's role)


@dataclass
class AdapterConfig:
    bottleneck: int = 64  # m, the adapter's inner width; 2md + d + m parameters each
    reduction_factor: int | None = None  # set instead of bottleneck: m = d / reduction_factor
    non_linearity: str = "relu"  # relu | gelu | tanh | swish
    scale: float = 1.0  # s on the adapter branch
    places: tuple = ("attn", "ffn")  # sub-layers that get one: attn, ffn
    parallel: bool = False  # false: serial on the sub-layer's output; true: beside the sub-layer
    train_layer_norms: bool = False  # Houlsby et al. also train every layer norm


class BottleneckAdapter(nn.Module):
    """x -> s * up(f(down(x))); up starts at zero, so a fresh adapter adds nothing."""

    def __init__(self, width: int, bottleneck: int, non_linearity: str, scale: float):
        super().__init__()
        self.down = nn.Linear(width, bottleneck)
        self.non_linearity = NON_LINEARITIES[non_linearity]()
        self.up = nn.Linear(bottleneck, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.up(self.non_linearity(self.down(x)))


class Wrapper(nn.Module):
    """Stands in for a projection: code that reads its weight (T5 checks wo.weight's dtype) still can."""

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight


class SerialAdapter(Wrapper):
    """The wrapped module's output y becomes y + adapter(y)."""

    def __init__(self, base: nn.Module, adapter: nn.Module):
        super().__init__()
        self.base, self.adapter = base, adapter

    def forward(self, *args, **kwargs):
        y = self.base(*args, **kwargs)
        return y + self.adapter(y)


class InputTap(Wrapper):
    """Passes through, keeping its input for the parallel adapter at the sub-layer's output."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base, self.kept = base, None

    def forward(self, x, *args, **kwargs):
        self.kept = x
        return self.base(x, *args, **kwargs)

    def take(self) -> torch.Tensor:
        kept, self.kept = self.kept, None  # no tensor stays on the module between passes
        return kept


class ParallelAdapter(Wrapper):
    """The wrapped output module's y becomes y + adapter(x), x the sub-layer input seen by `tap`."""

    def __init__(self, base: nn.Module, adapter: nn.Module, tap: InputTap):
        super().__init__()
        self.base, self.adapter = base, adapter
        object.__setattr__(self, "tap", tap)  # a module elsewhere in the tree, not a child of this one

    def forward(self, *args, **kwargs):
        return self.base(*args, **kwargs) + self.adapter(self.tap.take())


def features(module: nn.Module, side: str) -> int:
    """Input or output width of a projection: nn.Linear keeps (out, in), GPT-2's Conv1D (in, out)."""
    if isinstance(module, nn.Linear):
        return module.in_features if side == "in" else module.out_features
    return module.weight.shape[0 if side == "in" else 1]


def bottleneck_width(cfg: AdapterConfig, width: int) -> int:
    if cfg.reduction_factor is not None:
        if width % cfg.reduction_factor:
            raise ValueError(f"Adapter reduction_factor {cfg.reduction_factor} does not divide the width {width}.")
        return width // cfg.reduction_factor
    return cfg.bottleneck


def set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def sublayer_pairs(model: nn.Module, arch: Arch, place: str) -> list[tuple[str, str]]:
    """(input module, output module) per sub-layer: each output with the nearest input before it."""
    input_role, output_role = PLACES[place]
    inputs = set(module_names_for_roles(model, arch, [input_role]))
    outputs = set(module_names_for_roles(model, arch, [output_role]))
    pairs, last_input = [], None
    for name, _ in model.named_modules():
        if name in inputs and last_input is None:
            last_input = name
        elif name in outputs and last_input is not None:
            pairs.append((last_input, name))
            last_input = None
    return pairs


def check_adapter_config(cfg: AdapterConfig) -> None:
    if cfg.non_linearity not in NON_LINEARITIES:
        raise ValueError(f"Unknown adapter non_linearity '{cfg.non_linearity}'; valid: {', '.join(NON_LINEARITIES)}.")
    unknown = [p for p in cfg.places if p not in PLACES]
    if unknown or not cfg.places:
        raise ValueError(f"Unknown adapter place(s) {', '.join(unknown) or '(none)'}; valid: {', '.join(PLACES)}.")


def place_adapters(model: nn.Module, cfg: AdapterConfig, arch: Arch, make_adapter, keep=None) -> nn.Module:
    """Freeze the base and put `make_adapter(width, bottleneck)` at every configured place: serial on
    the sub-layer output, or parallel to the sub-layer. Shared by every adapter-shaped method.
    `keep(output_name)` says which sub-layers get one (None: all; S4 keeps some layers')."""
    check_adapter_config(cfg)
    freeze_all(model)
    modules = dict(model.named_modules())
    for place in cfg.places:
        for input_name, output_name in sublayer_pairs(model, arch, place):
            if keep is not None and not keep(output_name):
                continue
            output = modules[output_name]
            width = features(output, "out")
            adapter = make_adapter(width, bottleneck_width(cfg, width)).to(next(output.parameters()).device)
            if cfg.parallel:
                tap = InputTap(modules[input_name])
                set_module(model, input_name, tap)
                set_module(model, output_name, ParallelAdapter(output, adapter, tap))
            else:
                set_module(model, output_name, SerialAdapter(output, adapter))
    if cfg.train_layer_norms:
        for module in model.modules():
            if type(module).__name__.endswith(("LayerNorm", "RMSNorm")):
                for parameter in module.parameters(recurse=False):
                    parameter.requires_grad_(True)
    return model


def apply_adapters(model: nn.Module, cfg: AdapterConfig, arch: Arch) -> nn.Module:
    return place_adapters(model, cfg, arch, lambda width, m: BottleneckAdapter(width, m, cfg.non_linearity, cfg.scale))


@dataclass
class HoulsbyConfig(AdapterConfig):
    train_layer_norms: bool = True  # Houlsby et al.: after attention and FFN, layer norms trained too


@dataclass
class PfeifferConfig(AdapterConfig):
    places: tuple = ("ffn",)  # Pfeiffer et al.: one adapter, after the FFN


@dataclass
class ParallelConfig(AdapterConfig):
    places: tuple = ("ffn",)  # He et al.: beside the FFN (or the attention: places=[attn])
    parallel: bool = True


@dataclass
class ScaledParallelConfig(ParallelConfig):
    scale: float = 4.0  # He et al.'s best: s = 4 at the FFN


for name, config_cls in (
    ("adapter_houlsby", HoulsbyConfig),
    ("adapter_pfeiffer", PfeifferConfig),
    ("parallel_adapter", ParallelConfig),
    ("scaled_parallel_adapter", ScaledParallelConfig),
):
    register_method(Method(name, config_cls, apply_adapters, family="additive", size_knob="bottleneck"))
