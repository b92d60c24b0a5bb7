"""Diff pruning (Guo et al. 2021): the frozen weights plus a task-specific diff, W = W0 + z * w, with
a hard-concrete gate z per entry (Louizos et al. 2018's relaxation of the L0 norm; its expected
number of open gates is the penalty), then magnitude pruning of the diff to the target share at the
end of training. The optimizer trains the dense diff and the gate logits; what is stored is the sparse
diff (kept indices and values)."""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from peftbench.methods.modules import freeze_all
from peftbench.methods.registry import Arch, Method, register_method
from peftbench.methods.selection import SizedOnLoad, base_parameters, merge_parametrizations, parametrized
from peftbench.tensor_tags import mark_outside_total

# Hard-concrete constants of Louizos et al. (2018), used by Guo et al.: temperature and stretch interval.
BETA, GAMMA, ZETA = 2 / 3, -0.1, 1.1


@dataclass
class DiffPruningConfig:
    # share of the eligible weights left non-zero in the diff after pruning (Guo et al.: 0.5%)
    target_share: float = 0.005
    l0_weight: float = 1.25e-7  # penalty per expected non-zero diff entry (Guo et al.'s lambda)
    init_log_alpha: float = 5.0  # gate logits start high: gates open, so the diff learns from step one
    include: str = ".*"  # regular expression over base parameter names that get a diff


class DiffGate(SizedOnLoad):
    """W0 + z * w with a hard-concrete gate z; after `prune`, W0 + the kept sparse diff only."""

    def __init__(self, weight: torch.Tensor, init_log_alpha: float):
        super().__init__()
        self.diff = nn.Parameter(torch.zeros_like(weight))
        self.log_alpha = nn.Parameter(torch.full_like(weight, init_log_alpha))
        for training_only in (self.diff, self.log_alpha):  # trained, but not part of the tuned model's size
            mark_outside_total(training_only)
        self.register_buffer("pruned", torch.tensor(False, device=weight.device))
        self.register_buffer("kept_indices", torch.zeros(0, dtype=torch.long, device=weight.device))
        self.register_buffer("kept_values", torch.zeros(0, dtype=weight.dtype, device=weight.device))

    def gate(self) -> torch.Tensor:
        if self.training:  # a sample, reparametrized so gradients reach log_alpha
            u = torch.rand_like(self.log_alpha).clamp(1e-6, 1 - 1e-6)
            s = torch.sigmoid((u.log() - (1 - u).log() + self.log_alpha) / BETA)
        else:  # the deterministic gate for evaluation
            s = torch.sigmoid(self.log_alpha)
        return (s * (ZETA - GAMMA) + GAMMA).clamp(0, 1)

    def expected_open(self) -> torch.Tensor:
        """Expected number of non-zero gates: the differentiable L0 norm."""
        return torch.sigmoid(self.log_alpha - BETA * math.log(-GAMMA / ZETA)).sum()

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        if self.pruned:
            return original.flatten().index_add(0, self.kept_indices, self.kept_values).view_as(original)
        return original + self.gate() * self.diff

    @torch.no_grad()
    def dense_diff(self) -> torch.Tensor:
        was_training = self.training
        self.eval()
        diff = self.gate() * self.diff
        self.train(was_training)
        return diff

    def keep(self, indices: torch.Tensor, values: torch.Tensor) -> None:
        self.kept_indices.data, self.kept_values.data = indices, values
        self.pruned.fill_(True)

    def selected(self, original: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros(original.numel(), dtype=torch.bool, device=original.device)
        mask[self.kept_indices] = True
        return mask.view_as(original)


def apply_diff_pruning(model: nn.Module, cfg: DiffPruningConfig, arch: Arch) -> nn.Module:
    if not 0 < cfg.target_share <= 1:
        raise ValueError(f"DiffPruning target_share {cfg.target_share} is not in (0, 1].")
    freeze_all(model)
    for _, module, attribute in base_parameters(model, arch, cfg.include):
        gate = DiffGate(getattr(module, attribute), cfg.init_log_alpha)
        # unsafe: no trial call (its pruned-flag check cannot run on the meta device used for counting)
        parametrize.register_parametrization(module, attribute, gate, unsafe=True)
    model.diff_pruning_config = cfg  # read by the L0 penalty and the final pruning
    return model


def l0_penalty(model: nn.Module) -> torch.Tensor:
    gates = [gate for _, gate, _ in parametrized(model, DiffGate) if not gate.pruned]
    if not gates:
        return None
    return model.diff_pruning_config.l0_weight * sum(gate.expected_open() for gate in gates)


@torch.no_grad()
def magnitude_prune(model: nn.Module, target_share: float) -> None:
    """Keep the largest |diff| entries over all weights, `target_share` of them; the rest become zero."""
    gates = [gate for _, gate, _ in parametrized(model, DiffGate)]
    diffs = [gate.dense_diff().flatten() for gate in gates]
    keep = max(1, math.floor(target_share * sum(d.numel() for d in diffs)))
    magnitudes = torch.cat([d.abs() for d in diffs])
    chosen = torch.topk(magnitudes, keep).indices
    chosen = chosen[magnitudes[chosen] > 0].sort().values  # an all-zero diff entry is nothing to store
    offset = 0
    for gate, diff in zip(gates, diffs):
        inside = chosen[(chosen >= offset) & (chosen < offset + diff.numel())] - offset
        gate.keep(inside, diff[inside].clone())
        offset += diff.numel()


def prune_at_end(model: nn.Module, step: int, total_steps: int) -> None:
    if step == total_steps:  # before the final evaluation: the model evaluated is the one stored
        magnitude_prune(model, model.diff_pruning_config.target_share)


def kept_entries(model: nn.Module) -> int:
    return sum(gate.kept_indices.numel() for _, gate, _ in parametrized(model, DiffGate))


def trained_outside_gates(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trained tensors other than the dense diffs and gate logits (the head)."""
    gate_parameters = {id(p) for _, gate, _ in parametrized(model, DiffGate) for p in gate.parameters()}
    return {name: p for name, p in model.named_parameters() if p.requires_grad and id(p) not in gate_parameters}


def stored_numbers(model: nn.Module) -> int:
    """The kept diff entries (before pruning: the target, which pruning keeps exactly) and the head;
    the dense diff and gate logits are training-only."""
    gates = parametrized(model, DiffGate)
    pruned = any(bool(gate.pruned) for _, gate, _ in gates) if not next(model.parameters()).is_meta else False
    kept = kept_entries(model) if pruned else target_entries(model)
    return kept + sum(p.numel() for p in trained_outside_gates(model).values())


def target_entries(model: nn.Module) -> int:
    eligible = sum(original.numel() for _, _, original in parametrized(model, DiffGate))
    return max(1, math.floor(model.diff_pruning_config.target_share * eligible))


def sparse_state(model: nn.Module) -> dict:
    """The kept diff as (indices, values) per weight, the pruned flags, and the other trained tensors."""
    state = trained_outside_gates(model)
    state |= {
        name: b
        for name, b in model.named_buffers()
        if name.rsplit(".", 1)[-1] in ("kept_indices", "kept_values", "pruned")
    }
    return state


def pruning_report(model: nn.Module) -> dict:
    gates = parametrized(model, DiffGate)
    eligible = sum(original.numel() for _, _, original in gates)
    kept_per_tensor = {name: gate.kept_indices.numel() for name, gate, _ in gates if gate.kept_indices.numel()}
    return {
        "trained": "dense diff and hard-concrete gate logits on every eligible base weight, then magnitude-pruned",
        "eligible": eligible,
        "trained_diff_entries": eligible,
        "kept_nonzero": kept_entries(model),
        "target_nonzero": target_entries(model),
        "kept_per_tensor": kept_per_tensor,
    }


register_method(
    Method(
        "diff_pruning",
        DiffPruningConfig,
        apply_diff_pruning,
        family="selective",
        extra_loss=l0_penalty,
        on_step=prune_at_end,
        stored_parameters=stored_numbers,
        saved_state=sparse_state,
        report=pruning_report,
        merge=merge_parametrizations,
    )
)
