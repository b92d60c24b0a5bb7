"""Matched parameter budgets: set a method's size knob (LoRA's r, ...) to the value whose exact
trainable count, computed on the meta device without training, is closest to a target.

The count is the run's trainable count, task head included (what the record's `params.trainable`
says); a share target is trainable / total."""

import copy

from omegaconf import DictConfig, open_dict

from peftbench.measure import parameter_split
from peftbench.methods import Method, get_method
from peftbench.models import build_meta_model
from peftbench.plan import NotCountable, apply_on_meta, plan_run

KNOB_LIMIT = 2**16  # no size knob goes beyond this


class BudgetError(ValueError):
    """A budget that cannot be met: a usage error, raised before the run starts."""


def exact_counts(cfg: DictConfig, method: Method | None = None) -> tuple[int, int]:
    """(trainable, total) of the configured method on the configured model, on the meta device."""
    plan = plan_run(cfg, method)
    try:
        model = apply_on_meta(build_meta_model(cfg.model, plan.num_labels), plan)
    except NotCountable as error:
        raise BudgetError(f"{error}, as a budget needs; run it without a budget.") from error
    split = parameter_split(model, set(), set())
    return split["trainable"], split["total"]


def with_knob(cfg: DictConfig, method: Method, value: int) -> DictConfig:
    """The config at knob `value`; the method's follower options keep their ratio to the configured knob."""
    candidate = copy.deepcopy(cfg)
    knob = method.size_knob
    with open_dict(candidate):
        for follower in method.size_knob_followers:
            candidate.method[follower] = max(1, cfg.method[follower] * value // cfg.method[knob])
        candidate.method[knob] = value
    return candidate


def describe_target(budget) -> str:
    if budget.params is not None:
        return f"{budget.params:,} trainable parameters"
    return f"a trainable share of {budget.share:g}"


def solve_budget(cfg: DictConfig) -> tuple[DictConfig, dict | None]:
    """The config with the method's size knob set for the budget, and what was chosen."""
    budget = cfg.budget
    if budget.params is None and budget.share is None:
        return cfg, None
    if budget.params is not None and budget.share is not None:
        raise BudgetError(f"Budget '{budget.name}' sets both params and share; set one of them.")
    method = get_method(cfg.method.name)

    def size(counts):  # the quantity the target is stated in
        trainable, total = counts
        return trainable if budget.params is not None else trainable / total

    target = budget.params if budget.params is not None else budget.share
    if method.size_knob is None:  # a fixed size: only a target below it is an error
        counts = exact_counts(cfg, method)
        if target < size(counts):
            raise BudgetError(
                f"A budget of {describe_target(budget)} is below the smallest that {method.name} reaches "
                f"on {cfg.model.name}: {counts[0]:,} trainable parameters (it has no size knob)."
            )
        return cfg, budget_record(budget, counts, knob=None, value=None)

    knob = method.size_knob
    counts_at = {}

    def measure(value):
        if value not in counts_at:
            counts_at[value] = exact_counts(with_knob(cfg, method, value), method)
        return size(counts_at[value])

    smallest = method.size_knob_min
    if target < measure(smallest):
        raise BudgetError(
            f"A budget of {describe_target(budget)} is below the smallest that {method.name} reaches "
            f"on {cfg.model.name}: {counts_at[smallest][0]:,} trainable parameters ({knob}={smallest})."
        )
    limit = min(KNOB_LIMIT, (method.size_knob_limit(cfg) if method.size_knob_limit else None) or KNOB_LIMIT)
    high = smallest
    while measure(high) < target:  # grow, then bisect: sizes rise with the knob (until they stop rising)
        grown = min(2 * high, limit)
        if grown == high or measure(grown) <= measure(high):
            raise BudgetError(
                f"A budget of {describe_target(budget)} is above the largest that {method.name} reaches "
                f"on {cfg.model.name}: {counts_at[high][0]:,} trainable parameters ({knob}={high})."
            )
        high = grown
    low = max(smallest, high // 2)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if measure(middle) < target else (low, middle)
    value = min((low, high), key=lambda v: abs(measure(v) - target))
    return with_knob(cfg, method, value), budget_record(budget, counts_at[value], knob, value)


def budget_record(budget, counts: tuple[int, int], knob: str | None, value: int | None) -> dict:
    trainable, total = counts
    return {
        "name": budget.name,
        "target_params": budget.params,
        "target_share": budget.share,
        "knob": knob,
        "value": value,
        "achieved_params": trainable,
        "achieved_share": trainable / total,
    }
