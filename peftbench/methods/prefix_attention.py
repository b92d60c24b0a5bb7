"""Key/value prefixes on every attention of an encoder-decoder model, as Li & Liang (2021) put them:
the encoder's self-attention, the decoder's self-attention and the decoder's cross-attention each get
their own. peft's prefix tuning passes its prefixes to a seq2seq model as the decoder's cache, which
only the decoder's self-attention reads, so these are peftbench's own.

The model config's `prefix_attn` role names the attention modules that take prefixes. Modules whose
names differ only in the layer number form one group (say, every cross-attention), with one set of
prefixes per layer, trained directly or through Li & Liang's MLP over a small embedding (the MLP is
dropped after training). The prefixes enter through transformers' attention interface: the model is
switched to `peftbench_prefix`, an eager attention that puts its module's prefix keys and values in
front of its own, visible to every query and with no position bias.

S4 gives prefixes to the attentions of some layers only, on any model whose attention goes through
that interface (BERT, RoBERTa, GPT-2 and LLaMA too): an attention without prefixes runs the same
eager attention over its own keys and values."""

import re

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

from peftbench.methods.adapters import features
from peftbench.methods.modules import module_names_for_roles
from peftbench.methods.registry import Arch

ATTENTION = "peftbench_prefix"


class PrefixGroup(nn.Module):
    """Keys and values for one kind of attention across its layers: `layers` x 2 x `length` x `width`."""

    def __init__(self, layers: int, length: int, width: int, projection_hidden_size: int | None):
        super().__init__()
        self.layers, self.length, self.width = layers, length, width
        if projection_hidden_size:  # Li & Liang's reparametrisation, as peft's: embedding -> tanh MLP -> all layers
            self.embedding = nn.Parameter(torch.randn(length, width))
            self.mlp = nn.Sequential(
                nn.Linear(width, projection_hidden_size),
                nn.Tanh(),
                nn.Linear(projection_hidden_size, layers * 2 * width),
            )
        else:
            self.prefixes = nn.Parameter(torch.randn(layers, 2 * length, width))

    def keys_values(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This layer's prefix keys and values, each (length, width)."""
        if hasattr(self, "prefixes"):
            return self.prefixes[layer].split(self.length)
        # only this layer's outputs of the last linear
        rows = slice(layer * 2 * self.width, (layer + 1) * 2 * self.width)
        hidden = self.mlp[1](self.mlp[0](self.embedding))
        return F.linear(hidden, self.mlp[2].weight[rows], self.mlp[2].bias[rows]).split(self.width, dim=-1)

    def stored_numbers(self) -> int:
        return self.layers * 2 * self.length * self.width


def pad_front(scores: torch.Tensor | None, length: int) -> torch.Tensor | None:
    """An additive mask or position bias widened by `length` zero columns in front: every query sees the prefixes."""
    return None if scores is None else F.pad(scores, (length, 0))


def prefix_attention(
    module, query, key, value, attention_mask, scaling=None, dropout=0.0, position_bias=None, **kwargs
):
    """Eager attention over the module's prefixes (if it has them) and then its own keys and values;
    T5 passes its relative position bias, which the prefixes do not take."""
    slot = getattr(module, "prefix_slot", None)
    if slot is not None:
        group, layer = slot
        batch, heads, _, head_dim = key.shape
        if query.shape[1] != heads:
            raise ValueError(f"Prefixes need one key head per query head; {type(module).__name__} groups its keys.")
        scale = getattr(module, "prefix_scale", None)  # UniPELT's gate, (batch, 1, 1, 1), set just before

        def heads_first(prefix: torch.Tensor) -> torch.Tensor:
            prefix = prefix.view(1, group.length, heads, head_dim).transpose(1, 2)
            prefix = prefix.expand(batch, -1, -1, -1).to(key.dtype)
            return prefix if scale is None else prefix * scale

        prefix_keys, prefix_values = group.keys_values(layer)
        key = torch.cat([heads_first(prefix_keys), key], dim=2)
        value = torch.cat([heads_first(prefix_values), value], dim=2)
        attention_mask, position_bias = pad_front(attention_mask, group.length), pad_front(position_bias, group.length)
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    for bias in (position_bias, attention_mask):
        if bias is not None:
            scores = scores + bias
    weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


AttentionInterface.register(ATTENTION, prefix_attention)
# additive float masks, never skipped
AttentionMaskInterface.register(ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["eager"])


def key_width(model: nn.Module, arch: Arch, attention_name: str) -> int:
    """Width of the attention's keys: the output of its key projection (heads x head size); a fused
    query-key-value projection (GPT-2's c_attn) gives a third of its output to the keys."""
    key = next(name for name in module_names_for_roles(model, arch, ["k"]) if name.startswith(attention_name + "."))
    fused = key in module_names_for_roles(model, arch, ["q"])  # one projection for queries, keys and values
    module = model.get_submodule(key)
    while hasattr(module, "base"):  # wrapped by another method
        module = module.base
    return features(module, "out") // (3 if fused else 1)


def attention_names(model: nn.Module, arch: Arch) -> list[str]:
    """The attention modules that can take prefixes, in model order: the model config's `prefix_attn`
    modules (T5, BART), else the modules holding the query projections (BERT, GPT-2, LLaMA)."""
    if "prefix_attn" in arch.modules:
        return module_names_for_roles(model, arch, ["prefix_attn"])
    return list(dict.fromkeys(name.rpartition(".")[0] for name in module_names_for_roles(model, arch, ["q"])))


def attach_prefixes(
    model: nn.Module, arch: Arch, length: int, projection_hidden_size: int | None, names: list[str] | None = None
) -> nn.Module:
    """Gives the attention modules `names` (None: every one, `attention_names`) their prefixes; the
    groups live in `model.prefix_groups` and train. An attention left out runs plain eager attention."""
    names = attention_names(model, arch) if names is None else names
    by_group: dict[str, list[str]] = {}
    for name in names:  # in model order, so a group's list follows the layers
        by_group.setdefault(re.sub(r"\.\d+\.", ".#.", name), []).append(name)
    parameter = next(model.parameters())
    groups = nn.ModuleList()
    for members in by_group.values():
        group = PrefixGroup(len(members), length, key_width(model, arch, members[0]), projection_hidden_size)
        groups.append(group.to(device=parameter.device, dtype=parameter.dtype))
        for layer, name in enumerate(members):
            # a plain attribute: the group is registered once, below
            model.get_submodule(name).prefix_slot = (group, layer)
    model.prefix_groups = groups
    model.set_attn_implementation(ATTENTION)
    return model


def stored_numbers(model: nn.Module) -> int:
    """What inference needs: everything trained outside the prefix MLPs, and the prefixes they compute."""
    groups = list(getattr(model, "prefix_groups", []))
    inside = {id(p) for group in groups for p in group.parameters()}
    outside = sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in inside)
    return outside + sum(group.stored_numbers() for group in groups)
