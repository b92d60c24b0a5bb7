"""What a method tells the parameter counts about a tensor it makes: two tags, set here by the
methods and read here by `peftbench.measure.parameter_split`, so that neither side spells an
attribute name. An untagged trainable tensor outside the base model is one the method adds.

- selects base entries: the tensor holds selected entries of a base weight, trained in place of
  them (FishMask's entries, FAR's FFN nodes). Its numbers count as unfrozen base weights, not as
  added ones, and not a second time in the model's total.
- outside the total: the model holds the tensor, but it is no part of the tuned model's size
  (DiffPruning's dense diff and gate logits, which train and are then pruned to a sparse diff; the
  frozen original of a task head that peft trains a copy of).

This module imports nothing of peftbench: both the methods and the measurements sit above it."""

import torch

SELECTS_BASE_ENTRIES = "selects_base_entries"
COUNTS_IN_TOTAL = "counts_in_total"


def mark_selects_base_entries(tensor: torch.Tensor) -> None:
    setattr(tensor, SELECTS_BASE_ENTRIES, True)


def mark_outside_total(tensor: torch.Tensor) -> None:
    setattr(tensor, COUNTS_IN_TOTAL, False)


def selects_base_entries(tensor: torch.Tensor) -> bool:
    return getattr(tensor, SELECTS_BASE_ENTRIES, False)


def counts_in_total(tensor: torch.Tensor) -> bool:
    """Whether the tensor's numbers are part of the tuned model's size (a selection's are its base weight's)."""
    return getattr(tensor, COUNTS_IN_TOTAL, True) and not selects_base_entries(tensor)
