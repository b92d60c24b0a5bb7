"""What the survey tables share: the conditions our runs must meet, the baseline rows and the task columns."""

from peftbench.report.tables import Column, Row

ACCURACY = "metrics.final.accuracy"
QV = ["q", "v"]
# AdaLoRA's "generalized LoRA" (Wq, Wk, Wv, Wo, Wf1, Wf2); QLoRA adapts the same layers.
ALL_ROLES = ["q", "k", "v", "attn_out", "ffn_in", "ffn_out"]
# Full training sets only: K-shot runs (UniPELT Table 1's setting) stay out of full-data tables.
FULL_DATA = {"task.max_train_samples": None}
# LoRA as Hu et al. ran it on GLUE (rank 8 on Wq, Wv); UniPELT and LoRA Table 4 use it too.
LORA_R8_QV = {"r": 8, "target_modules": QV}
# Ours only: our RTE accuracy beside a table whose tasks we do not have (the renderer adds "ours").
RTE_OURS = Column("RTE", ours=ACCURACY, task="rte", scale=100.0)


def method_options(**options) -> dict:
    """Method options our runs must have, as config paths: r=8 -> {"method.r": 8}."""
    return {f"method.{name}": value for name, value in options.items()}


def full_data(**options) -> dict:
    """The full training set, and these method options."""
    return {**FULL_DATA, **method_options(**options)}


def full_data_at_budget(name: str) -> dict:
    """The full training set, at the matched parameter budget of this name (conf/budget/<name>.yaml)."""
    return {**FULL_DATA, "budget.name": name}


def paper_row(label: str, method: str | None = None, where: dict | None = None, **selector: str) -> Row:
    """A row the reference CSV names by `label` in its method column (and `selector`'s values); ours: `method`
    under the `where` conditions, or none."""
    return Row(label, {**selector, "method": label}, method, where or {})


def full_ft_row(label: str, paper_method: str | None = None, where: dict = FULL_DATA, **selector: str) -> Row:
    """Full fine-tuning, as the paper labels it (and names it in the CSV, where that differs)."""
    return Row(label, {**selector, "method": paper_method or label}, "full_ft", where)


def bitfit_row(where: dict = FULL_DATA, **selector: str) -> Row:
    return paper_row("BitFit", "bitfit", where, **selector)


def task_column(
    label: str, published: str, task: str | None = None, metric: str | None = None, decimals: int = 1
) -> Column:
    """A task column in percent; our side only where we have the task."""
    ours = f"metrics.final.{metric}" if task else None
    return Column(label, published=published, task=task, ours=ours, scale=100.0, decimals=decimals)
