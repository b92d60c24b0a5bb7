"""Training a selected part of existing weights (FishMask's entries, FAR's FFN nodes, DiffPruning's
diff) through weight parametrizations: the frozen weight stays as loaded and the selection is put in
on the fly, so the optimizer only ever holds the selected numbers and merging is exact."""

import re

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from peftbench.methods.registry import Arch
from peftbench.tensor_tags import mark_selects_base_entries


class SizedOnLoad(nn.Module):
    """A parametrization whose tensors' sizes are decided by data or training (how many entries a
    mask keeps): loading a checkpoint resizes them to the saved sizes first."""

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name, tensor in [*self._parameters.items(), *self._buffers.items()]:
            saved = state_dict.get(prefix + name)
            if tensor is not None and saved is not None and saved.shape != tensor.shape:
                tensor.data = torch.empty(saved.shape, dtype=tensor.dtype, device=tensor.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class EntrySelection(SizedOnLoad):
    """The weight with the entries at `indices` (into the flattened weight) replaced by the trainable
    `values`; nothing selected yet: the weight itself."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("indices", torch.zeros(0, dtype=torch.long, device=weight.device))
        self.values = nn.Parameter(torch.zeros(0, dtype=weight.dtype, device=weight.device))
        mark_selects_base_entries(self.values)  # counted as unfrozen base weights, not as added ones

    def select(self, original: torch.Tensor, indices: torch.Tensor) -> None:
        self.indices.data = indices.to(original.device)
        self.values.data = original.detach().flatten()[self.indices].clone()

    def reserve(self, original: torch.Tensor, count: int) -> None:
        """Hold `count` entries (the first ones) until the real selection is made: sizes are exact from the start."""
        self.select(original, torch.arange(count, device=original.device))

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        if self.indices.numel() == 0:
            return original
        return original.flatten().index_put((self.indices,), self.values).view_as(original)

    def selected(self, original: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros(original.numel(), dtype=torch.bool, device=original.device)
        mask[self.indices] = True
        return mask.view_as(original)


class SliceSelection(SizedOnLoad):
    """The weight with the slices `indices` along `dim` (FAR's FFN nodes: rows or columns) replaced by
    the trainable `values`."""

    def __init__(self, weight: torch.Tensor, dim: int, count: int):
        super().__init__()
        self.dim = dim
        self.register_buffer("indices", torch.arange(count, device=weight.device))
        self.values = nn.Parameter(weight.detach().index_select(dim, self.indices).clone())
        mark_selects_base_entries(self.values)

    def select(self, original: torch.Tensor, indices: torch.Tensor) -> None:
        self.indices.data = indices.to(original.device)
        self.values.data = original.detach().index_select(self.dim, self.indices).clone()

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return original.index_copy(self.dim, self.indices, self.values)

    def selected(self, original: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros_like(original, dtype=torch.bool)
        mask.index_fill_(self.dim, self.indices, True)
        return mask


def base_parameters(model: nn.Module, arch: Arch, include: str) -> list[tuple[str, nn.Module, str]]:
    """(full name, owning module, attribute) of the base model's parameters whose names match
    `include`, in model order; the task head (trained whole under every method) is left out."""
    pattern = re.compile(include)
    head = [re.compile(rf"(^|\.){re.escape(name)}(\.|$)") for name in arch.head]
    found, seen = [], set()
    for module_name, module in model.named_modules():
        for attribute, parameter in module.named_parameters(recurse=False):
            name = f"{module_name}.{attribute}" if module_name else attribute
            if id(parameter) in seen or any(h.search(name) for h in head) or not pattern.search(name):
                continue
            seen.add(id(parameter))  # a tied weight is selected once
            found.append((name, module, attribute))
    if not found:
        raise ValueError(
            f"No base parameter matches include='{include}'; names look like "
            f"'{next(n for n, _ in model.named_parameters())}'."
        )
    return found


def parametrized(model: nn.Module, kind: type) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """(weight name, parametrization, frozen original) for every parametrization of the given kind."""
    found = []
    for module_name, module in model.named_modules():
        if not parametrize.is_parametrized(module):
            continue
        for attribute, parametrizations in module.parametrizations.items():
            for p in parametrizations:
                if isinstance(p, kind):
                    found.append((f"{module_name}.{attribute}", p, parametrizations.original))
    return found


def selection_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """weight name -> where the method may change it (True), for every selective parametrization."""
    parametrizations = parametrized(model, nn.Module)
    return {name: p.selected(original) for name, p, original in parametrizations if hasattr(p, "selected")}


def summed_gradients(model: nn.Module, tensors: list[torch.Tensor], batches, of) -> tuple[list[torch.Tensor], int]:
    """For frozen tensors the model computes with (parameters or buffers): the sum over the batches of
    of(gradient of the task loss), dropout off (importance scores for choosing what trains), and the
    number of batches."""
    device = tensors[0].device
    was_training = model.training
    model.eval()
    sums = [torch.zeros_like(t) for t in tensors]
    for t in tensors:
        t.requires_grad_(True)
    count = 0
    for batch in batches:
        model.zero_grad(set_to_none=True)
        model(**{k: v.to(device) for k, v in batch.items()}).loss.backward()
        for total, t in zip(sums, tensors):
            if t.grad is not None:
                total += of(t.grad)
            t.grad = None  # a tensor that is not a parameter (a buffer) is not cleared by zero_grad
        count += 1
    for t in tensors:
        t.requires_grad_(False)
        t.grad = None
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return sums, count


def selection_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """What restores a selectively tuned model on its base: the trained values and where they go."""
    state = {name: p for name, p in model.named_parameters() if p.requires_grad}
    for module_name, module in model.named_modules():
        if isinstance(module, (EntrySelection, SliceSelection)):
            state[f"{module_name}.indices"] = module.indices
    return state


def merge_parametrizations(model: nn.Module) -> nn.Module:
    """Every parametrized weight replaced by its current value: a plain model with no overhead.

    torch's `remove_parametrizations` deletes the weight property from the parametrized class, which
    a deep copy shares with the original, so the original would lose its weights; this swaps the
    copy's class back instead and leaves the shared class alone."""
    model.eval()
    with torch.no_grad():
        for module in list(model.modules()):
            if not parametrize.is_parametrized(module):
                continue
            values = {name: getattr(module, name).detach().clone() for name in module.parametrizations}
            module.__class__ = module.__class__.__bases__[0]  # the plain class the parametrized one derives from
            del module.parametrizations
            for name, value in values.items():
                module.register_parameter(name, nn.Parameter(value, requires_grad=False))
    return model
