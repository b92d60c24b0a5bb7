"""AdaLoRA (Zhang et al. 2023): Table 1."""

from peftbench.report.specs.common import (
    ALL_ROLES,
    bitfit_row,
    full_data,
    full_data_at_budget,
    full_ft_row,
    task_column,
)
from peftbench.report.tables import Column, Row, TableSpec

ADALORA_TABLE1 = TableSpec(
    paper_model="deberta_v3_base",
    name="adalora_table1",
    title="AdaLoRA Table 1 (Zhang et al. 2023): GLUE dev at matched parameter budgets",
    reference="adalora_table1_glue.csv",
    paper_setting="DeBERTaV3-base, full GLUE training sets, mean of 5 seeds; LoRA on Wq, Wk, Wv, Wo, Wf1, Wf2; "
    "the paper prints no LoRA/AdaLoRA row at ~0.6M; paper STS-B is the mean of Pearson and Spearman, "
    "ours is Pearson; our #Params are from our RTE runs, task head included",
    task=None,
    columns=(
        # the rows are matched on their budget: no best parameter count
        Column(
            "#Params (M)",
            published="trainable_params_M",
            ours="params.trainable",
            task="rte",
            scale=1e-6,
            ranked=False,
            decimals=2,
        ),
        task_column("MNLI-m", "mnli_m_acc", decimals=2),
        task_column("MNLI-mm", "mnli_mm_acc", decimals=2),
        task_column("SST-2", "sst2_acc", "sst2", "accuracy", decimals=2),
        task_column("CoLA", "cola_mcc", "cola", "matthews_corr", decimals=2),
        task_column("QQP Acc", "qqp_acc", decimals=2),
        task_column("QQP F1", "qqp_f1", decimals=2),
        task_column("QNLI", "qnli_acc", decimals=2),
        task_column("RTE", "rte_acc", "rte", "accuracy", decimals=2),
        task_column("MRPC", "mrpc_acc", "mrpc", "accuracy", decimals=2),
        task_column("STS-B", "stsb_corr", "stsb", "pearson", decimals=2),
        task_column("Avg", "avg", decimals=2),
    ),
    rows=(
        full_ft_row("Full FT"),
        bitfit_row(),
        Row("HAdapter (1.22M)", {"budget_group": "~1.2M", "method": "HAdapter"}),
        Row("PAdapter (1.18M)", {"budget_group": "~1.2M", "method": "PAdapter"}),
        Row(
            "LoRA r=8",
            {"budget_group": "~1.2M", "method": "LoRA r=8"},
            "lora",
            full_data(r=8, target_modules=ALL_ROLES),
        ),
        Row(
            "AdaLoRA (1.27M)",
            {"budget_group": "~1.2M", "method": "AdaLoRA"},
            "adalora",
            full_data_at_budget("params_1.2m"),
        ),
        Row("HAdapter (0.61M)", {"budget_group": "~0.6M", "method": "HAdapter"}),
        Row("PAdapter (0.60M)", {"budget_group": "~0.6M", "method": "PAdapter"}),
        Row("HAdapter (0.31M)", {"budget_group": "~0.3M", "method": "HAdapter"}),
        Row("PAdapter (0.30M)", {"budget_group": "~0.3M", "method": "PAdapter"}),
        Row(
            "LoRA r=2",
            {"budget_group": "~0.3M", "method": "LoRA r=2"},
            "lora",
            full_data(r=2, target_modules=ALL_ROLES),
        ),
        Row(
            "AdaLoRA (0.32M)",
            {"budget_group": "~0.3M", "method": "AdaLoRA"},
            "adalora",
            full_data_at_budget("params_0.3m"),
        ),
    ),
)
