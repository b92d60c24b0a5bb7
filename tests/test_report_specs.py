"""Every survey table spec, rendered from one fixed set of fixture records, equals its golden Markdown file;
every spec's selectors and columns name real rows and columns of its reference CSV, and its mapping names
real methods, method options, tasks, metrics and budgets.

Golden files are tests/golden/<spec name>.md. After a deliberate change to a spec or to the fixtures,
regenerate one (or, with no name, all) and read the diff before committing it:

    .venv/bin/python tests/test_report_specs.py lora_table4
"""

import csv
import functools
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from peftbench import CONF_DIR
from peftbench.fields import FIELDS
from peftbench.methods import METHODS
from peftbench.metrics import METRICS
from peftbench.report.render import to_markdown
from peftbench.report.specs import SPECS
from peftbench.report.tables import REFERENCE_DIR, build

from conftest import compose_config

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
MODEL = "minilm_l6"
TOTAL_PARAMS = 22_713_986  # our model's parameter count (full fine-tuning trains all of it)
ALL_ROLES = ["q", "k", "v", "attn_out", "ffn_in", "ffn_out"]
# Method options as the composed configs hold them (conf/method/*.yaml), which a record overrides.
METHOD_DEFAULTS = {
    "lora": {"r": 8, "target_modules": ["q", "v"]},
    "adalora": {"init_r": 12, "target_r": 8, "target_modules": ALL_ROLES},
    "prefix_tuning": {"num_virtual_tokens": 20},
    "prompt_tuning": {"num_virtual_tokens": 20},
    "p_tuning_v2": {"num_virtual_tokens": 20},
    "qlora": {"r": 8, "target_modules": ALL_ROLES, "bits": 4, "quant_type": "nf4", "double_quant": True},
    "qlora_8bit": {"r": 8, "target_modules": ALL_ROLES, "bits": 8, "quant_type": "nf4", "double_quant": True},
}


def task_metrics(task: str, value: float) -> dict:
    """The final metrics a task's record holds; `value` is its main metric."""
    return {
        "mrpc": {"f1": value, "accuracy": value - 0.05},
        "stsb": {"pearson": value, "spearman": value - 0.01},
        "cola": {"matthews_corr": value},
    }.get(task, {"accuracy": value})


def record(method, task, seed, value, trainable=None, K=None, budget="none", model=MODEL, status="ok", **options):
    share = trainable / TOTAL_PARAMS if trainable else None  # nothing stored apart from the trainable
    params = {"trainable": trainable, "trainable_share": share, "stored_share": share} if trainable else {}
    run = {"method": method, "method_family": METHODS[method].family, "task": task, "model": model, "seed": seed}
    return {
        "status": status,
        "run": run,
        "config": {
            "method": {"name": method, **METHOD_DEFAULTS.get(method, {}), **options},
            "task": {"name": task, "max_train_samples": K},
            "budget": {"name": budget},
        },
        "metrics": {"final": task_metrics(task, value)},
        "params": params,
    }


def seeds(method, task, values, **settings) -> list[dict]:
    return [record(method, task, seed, value, **settings) for seed, value in enumerate(values)]


RECORDS = [
    # Full training data.
    *seeds("full_ft", "rte", (0.62, 0.64, 0.63), trainable=TOTAL_PARAMS),
    *seeds("full_ft", "sst2", (0.90, 0.91)),
    *seeds("full_ft", "cola", (0.40, 0.42)),
    *seeds("full_ft", "mrpc", (0.86, 0.88)),
    *seeds("full_ft", "stsb", (0.85, 0.87)),
    *seeds("bitfit", "rte", (0.58, 0.60), trainable=31_490),
    *seeds("bitfit", "sst2", (0.86,), trainable=31_490),
    *seeds("prompt_tuning", "rte", (0.55,), num_virtual_tokens=264, trainable=102_146),  # n=1 (PreEmbed)
    *seeds("prompt_tuning", "rte", (0.99,), trainable=8_450),  # 20 tokens: no paper row's setting
    # (no p_tuning_v2 run: LoRA Table 4's PreLayer row stays missing)
    *seeds("lora", "rte", (0.57, 0.59, 0.58), trainable=74_498),  # r=8 on q,v
    *seeds("lora", "rte", (0.56,), r=1, trainable=9_986),
    *seeds("lora", "rte", (0.60, 0.62), target_modules=["q"]),
    *seeds("lora", "rte", (0.61,), r=4),
    *seeds("lora", "rte", (0.63,), r=2, target_modules=["q", "k", "v", "attn_out"]),
    *seeds("lora", "rte", (0.52,), r=64, target_modules=["q"]),
    *seeds("lora", "rte", (0.65, 0.66), target_modules=ALL_ROLES, trainable=332_546),
    *seeds("lora", "sst2", (0.89, 0.90), target_modules=ALL_ROLES),
    *seeds("lora", "cola", (0.38,), target_modules=ALL_ROLES),
    *seeds("lora", "rte", (0.64,), r=2, target_modules=ALL_ROLES, trainable=83_714),
    *seeds("adalora", "rte", (0.67, 0.69), budget="params_1.2m", init_r=10, target_r=7, trainable=1_201_154),
    *seeds("adalora", "rte", (0.66,), budget="params_0.3m", init_r=3, target_r=2, trainable=299_906),
    *seeds("adalora", "rte", (0.60,), budget="params_0.6m", init_r=6, target_r=4),  # AdaLoRA prints no 0.6M row
    *seeds("prefix_tuning", "rte", (0.54, 0.56), num_virtual_tokens=10),
    *seeds("prefix_tuning", "rte", (0.98,)),
    # He et al.'s 0.5% budget (the budget sets LoRA's rank and the prefix length).
    *seeds("lora", "sst2", (0.88, 0.89), budget="share_0.5pct", r=48, trainable=113_570),
    *seeds("prefix_tuning", "sst2", (0.84,), budget="share_0.5pct", num_virtual_tokens=12, trainable=112_898),
    # QLoRA: all linear layers on a quantized base.
    *seeds("qlora", "rte", (0.61,), quant_type="fp4", double_quant=False),
    *seeds("qlora", "rte", (0.62, 0.66)),
    *seeds("qlora", "rte", (0.97,), double_quant=False),  # NF4 without DQ
    *seeds("qlora_8bit", "rte", (0.63, 0.65)),
    # K training samples (UniPELT Table 1): never in a full-data table.
    *seeds("full_ft", "rte", (0.53, 0.55), K=100),
    *seeds("full_ft", "mrpc", (0.81,), K=100),
    *seeds("full_ft", "sst2", (0.80, 0.82), K=1000),
    *seeds("bitfit", "rte", (0.50,), K=100),
    *seeds("lora", "rte", (0.52, 0.54), K=100),
    *seeds("lora", "stsb", (0.70, 0.74), K=100),
    *seeds("lora", "cola", (0.10,), K=500),
    *seeds("prefix_tuning", "rte", (0.51,), K=100, num_virtual_tokens=50),
    *seeds("prefix_tuning", "rte", (0.57, 0.59), K=500, num_virtual_tokens=10),
    # Never counted: a failed run, another model.
    record("lora", "rte", 5, 0.99, status="failed"),
    record("full_ft", "rte", 5, 0.99, model="tiny_bert"),
]


def markdown(name: str) -> str:
    return to_markdown(build(SPECS[name], RECORDS, MODEL))


@functools.cache
def task_config(name: str) -> dict:
    """conf/task/<name>.yaml as a run composes it (with what it builds on)."""
    return OmegaConf.to_container(compose_config([f"+task={name}"]).task, resolve=True)


def reference_rows(spec) -> list[dict]:
    return list(csv.DictReader(open(REFERENCE_DIR / spec.reference, encoding="utf-8")))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_markdown_equals_golden(name):
    assert markdown(name) == (GOLDEN_DIR / f"{name}.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(name for name, spec in SPECS.items() if spec.reference))
def test_selectors_and_columns_name_the_reference_csv(name):
    spec = SPECS[name]
    rows = reference_rows(spec)
    for row in spec.rows:
        matches = [r for r in rows if all(r.get(key) == value for key, value in row.published.items())]
        assert row.published and len(matches) == 1, f"{name}: row '{row.label}' selects {len(matches)} CSV rows"
    assert not [c.published for c in spec.columns if c.published and c.published not in rows[0]]
    assert len({row.label for row in spec.rows}) == len(spec.rows)
    assert len({column.label for column in spec.columns}) == len(spec.columns)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_ours_names_real_methods_options_tasks_metrics_and_budgets(name):
    spec = SPECS[name]
    tasks = {path.stem: task_config(path.stem) for path in (CONF_DIR / "task").glob("*.yaml")}
    budgets = {path.stem for path in (CONF_DIR / "budget").glob("*.yaml")}
    for column in spec.columns:
        if column.ours:
            assert column.ours in FIELDS, f"{name}: column '{column.label}' reads an undeclared field"
            assert (column.task or spec.task) in tasks, f"{name}: column '{column.label}' has no task of ours"
        if column.ours and column.ours.startswith("metrics.final."):
            metric = column.ours.rsplit(".", 1)[1]
            assert metric in METRICS and metric in tasks[column.task or spec.task]["metrics"], column.label
    for row in (row for row in spec.rows if row.method):
        options = {f.name for f in fields(METHODS[row.method].config_cls)}
        for key, value in row.where.items():
            group, option = key.split(".", 1)
            assert {
                "method": option in options,
                "task": option in tasks["rte"],
                "budget": option == "name" and value in budgets,
            }[group], f"{name}: '{row.label}' where {key}"


if __name__ == "__main__":
    GOLDEN_DIR.mkdir(exist_ok=True)
    for spec_name in sys.argv[1:] or sorted(SPECS):
        (GOLDEN_DIR / f"{spec_name}.md").write_text(markdown(spec_name), encoding="utf-8")
        print(GOLDEN_DIR / f"{spec_name}.md")
