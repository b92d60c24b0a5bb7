"""FAR, Freeze And Reconfigure (Vucetic et al. 2022): train only the most important nodes of every
FFN, i.e. their incoming weights in the FFN's first linear layer and outgoing weights in its second,
splitting each of those layers into a trainable part (the selected nodes) and a frozen part.

Importance before training: `gradient` sums |dL/dW| of a node's weights over a few training batches
(a first-order stand-in for FAR's priming phase, which picks the nodes whose weights move most early
in fine-tuning); `magnitude` is the L1 norm of the node's weights; `random` a seeded draw."""

from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from peftbench.methods.modules import freeze_all, module_names_for_roles
from peftbench.methods.registry import Arch, Method, register_method
from peftbench.methods.selection import (
    SliceSelection,
    merge_parametrizations,
    parametrized,
    selection_state,
    summed_gradients,
)

IMPORTANCE = ("gradient", "magnitude", "random")


@dataclass
class FarConfig:
    trainable_share: float = 0.06  # share of all parameters that train; sets the nodes per FFN (Vucetic et al.: ~6%)
    importance: str = "gradient"  # gradient | magnitude | random: how nodes are ranked
    importance_batches: int = 8  # training batches for the gradient importance


def node_dim(module: nn.Module, side: str) -> int:
    """The weight axis that indexes the FFN's inner nodes. nn.Linear stores (out, in); GPT-2's Conv1D
    stores (in, out). `side` is ffn_in (nodes are outputs) or ffn_out (nodes are inputs)."""
    outputs_axis = 0 if isinstance(module, nn.Linear) else 1
    return outputs_axis if side == "ffn_in" else 1 - outputs_axis


def ffn_pairs(model: nn.Module, arch: Arch) -> list[tuple[nn.Module, nn.Module]]:
    modules = dict(model.named_modules())
    ins = [modules[n] for n in module_names_for_roles(model, arch, ["ffn_in"])]
    outs = [modules[n] for n in module_names_for_roles(model, arch, ["ffn_out"])]
    if len(ins) != len(outs):
        raise ValueError(f"FAR found {len(ins)} FFN input and {len(outs)} FFN output layers; they must pair up.")
    return list(zip(ins, outs))


def apply_far(model: nn.Module, cfg: FarConfig, arch: Arch) -> nn.Module:
    if cfg.importance not in IMPORTANCE:
        raise ValueError(f"Unknown FAR importance '{cfg.importance}'; valid: {', '.join(IMPORTANCE)}.")
    total = sum(p.numel() for p in model.parameters())
    pairs = ffn_pairs(model, arch)
    layer_in, layer_out = pairs[0]
    nodes = layer_in.weight.shape[node_dim(layer_in, "ffn_in")]
    weights_per_node = layer_in.weight.numel() // nodes + layer_out.weight.numel() // nodes
    per_layer = round(cfg.trainable_share * total / (len(pairs) * weights_per_node))
    if not 1 <= per_layer <= nodes:
        raise ValueError(
            f"FAR trainable_share {cfg.trainable_share} asks for {per_layer} nodes per FFN; "
            f"this model has 1 to {nodes}."
        )
    freeze_all(model)
    for ffn_in, ffn_out in pairs:
        for module, side in ((ffn_in, "ffn_in"), (ffn_out, "ffn_out")):
            parametrize.register_parametrization(
                module, "weight", SliceSelection(module.weight, node_dim(module, side), per_layer)
            )
    model.far_config = cfg  # read by the node selection before training
    return model


def node_selections(model: nn.Module) -> list[tuple[SliceSelection, torch.Tensor]]:
    """(selection, frozen weight) of every FFN layer, in model order: each layer's input, then output."""
    return [(selection, original) for _, selection, original in parametrized(model, SliceSelection)]


def node_scores(model: nn.Module, cfg: FarConfig, train_loader) -> list[torch.Tensor]:
    """One importance score per FFN node, per layer."""
    selections = node_selections(model)
    weights = [original for _, original in selections]
    if cfg.importance == "random":
        return [torch.rand(w.shape[s.dim], device=w.device) for s, w in selections[::2]]
    if cfg.importance == "gradient":
        batches = (batch for _, batch in zip(range(cfg.importance_batches), train_loader))
        values, _ = summed_gradients(model, weights, batches, of=torch.abs)
    else:
        values = [w.detach().abs() for w in weights]
    per_tensor = [v.sum(dim=1 - s.dim) for v, (s, _) in zip(values, selections)]
    return [a + b for a, b in zip(per_tensor[::2], per_tensor[1::2])]


def select_nodes(model: nn.Module, total_steps: int, train_loader) -> None:
    selections = node_selections(model)
    for layer, scores in enumerate(node_scores(model, model.far_config, train_loader)):
        for selection, original in selections[2 * layer : 2 * layer + 2]:  # the layer's FFN input and output
            selection.select(original, torch.topk(scores, selection.indices.numel()).indices.sort().values)


def node_report(model: nn.Module) -> dict:
    selections = parametrized(model, SliceSelection)
    return {
        "trained": f"FFN nodes chosen by {model.far_config.importance} importance: their weights in both FFN layers",
        "nodes_per_layer": selections[0][1].indices.numel(),
        "nodes": {name: s.indices.tolist() for name, s, _ in selections[::2]},
    }


register_method(
    Method(
        "far",
        FarConfig,
        apply_far,
        family="selective",
        on_train_start=select_nodes,
        report=node_report,
        saved_state=selection_state,
        merge=merge_parametrizations,
    )
)
