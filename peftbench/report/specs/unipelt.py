"""UniPELT (Mao et al. 2022): Tables 1, 3 and 4."""

from peftbench.report.specs.common import (
    LORA_R8_QV,
    bitfit_row,
    full_data,
    full_ft_row,
    method_options,
    paper_row,
    task_column,
)
from peftbench.report.tables import Column, Row, TableSpec

PREFIX_L10 = {"num_virtual_tokens": 10}  # the paper's prefix length L
# The paper's adapter is its code's default (adapter-transformers' PfeifferConfig): one adapter after the FFN,
# bottleneck d / 16 (48 on BERT-base)
ADAPTER_R16 = {"reduction_factor": 16}
APL, AP = {"parts": ["adapter", "prefix", "lora"]}, {"parts": ["adapter", "prefix"]}  # UniPELT's submodules
# UniPELT's methods as ours (prefix length L=10, LoRA rank 8 on Wq,Wv, the adapter above, as in the paper).
UNIPELT_METHODS = (
    ("Fine-tuning", "full_ft", {}),
    ("BitFit", "bitfit", {}),
    ("Adapter", "adapter_pfeiffer", ADAPTER_R16),
    ("Prefix-tuning", "prefix_tuning", PREFIX_L10),
    ("Prefix-tuning (L=50)", "prefix_tuning", {"num_virtual_tokens": 50}),  # printed at K=100 only
    ("LoRA", "lora", LORA_R8_QV),
    ("UniPELT (AP)", "unipelt", AP),
    ("UniPELT (APL)", "unipelt", APL),
)


def unipelt_columns() -> tuple[Column, ...]:
    """Tables 1 and 3: the paper's metric per task (MRPC/QQP F1, CoLA MCC, STS-B Spearman)."""
    return (
        task_column("SST-2", "sst2", "sst2", "accuracy", decimals=2),
        task_column("MRPC F1", "mrpc_f1", "mrpc", "f1", decimals=2),
        task_column("CoLA MCC", "cola_mcc", "cola", "matthews_corr", decimals=2),
        task_column("RTE", "rte_acc", "rte", "accuracy", decimals=2),
        task_column("QNLI", "qnli_acc", decimals=2),
        task_column("STS-B Spearman", "stsb_spearman", "stsb", "spearman", decimals=2),
        task_column("MNLI", "mnli_m_acc", decimals=2),
        task_column("QQP F1", "qqp_f1", decimals=2),
        task_column("Avg", "avg", decimals=2),
    )


def k_shot_row(size: int, name: str, method: str | None, options: dict) -> Row:
    """A row of Table 1: the method trained on a seeded random subset of `size` samples."""
    where = {}
    if method:
        where = {"task.max_train_samples": size, **method_options(**options)}
    return Row(f"K={size} {name}", {"train_size_K": str(size), "method": name}, method, where)


UNIPELT_TABLE1 = TableSpec(
    paper_model="bert_base",
    name="unipelt_table1",
    title="UniPELT Table 1 (Mao et al. 2022): low-resource GLUE, K training samples",
    reference="unipelt_table1_lowresource.csv",
    paper_setting="BERT-base, K = 100/500/1000 training samples, the GLUE dev set as test set, mean over 5 seeds "
    "(the paper's std is in the reference CSV); ours: a seeded random subset of K samples "
    "(task.max_train_samples)",
    task=None,
    columns=unipelt_columns(),
    rows=tuple(
        k_shot_row(size, name, method, options)
        for size in (100, 500, 1000)
        for name, method, options in UNIPELT_METHODS
        if size == 100 or name != "Prefix-tuning (L=50)"
    ),
)

UNIPELT_TABLE3 = TableSpec(
    paper_model="bert_base",
    name="unipelt_table3",
    title="UniPELT Table 3 (Mao et al. 2022): full training data",
    reference="unipelt_table3_fulldata.csv",
    paper_setting="BERT-base, full GLUE training sets, best performance on GLUE dev",
    task=None,
    columns=unipelt_columns(),
    rows=(
        full_ft_row("Fine-tuning"),
        paper_row("Adapter", "adapter_pfeiffer", full_data(**ADAPTER_R16)),
        paper_row("Prefix-tuning", "prefix_tuning", full_data(**PREFIX_L10)),
        paper_row("LoRA", "lora", full_data(**LORA_R8_QV)),
        paper_row("UniPELT (AP)", "unipelt", full_data(**AP)),
        paper_row("UniPELT (AP) -NoGate", "unipelt_nogate", full_data(**AP)),
        paper_row("UniPELT (APL)", "unipelt", full_data(**APL)),
    ),
)

# Its rows ask for no training set size: K-shot runs count here too.
UNIPELT_TABLE4 = TableSpec(
    paper_model="bert_base",
    name="unipelt_table4",
    title="UniPELT Table 4 (Mao et al. 2022): efficiency, relative to fine-tuning (FT = 100)",
    reference="unipelt_table4_efficiency.csv",
    paper_setting="BERT-base on GLUE; prefix L=10, adapter bottleneck 48, LoRA rank 8",
    task="rte",
    columns=(
        Column("Params %", published="trainable_params_pct", ours="params.trainable_share", scale=100.0, decimals=2),
        Column(
            "Train time %",
            published="train_time_rel_ft_pct",
            ours="throughput.median_step_seconds",
            relative_to="full_ft",
            decimals=0,
        ),
        Column(
            "Inference time %",
            published="inference_time_rel_ft_pct",
            ours="latency.method.median_ms",
            relative_to="full_ft",
            decimals=0,
        ),
    ),
    rows=(
        full_ft_row("Fine-tuning", where={}),
        bitfit_row(where={}),
        paper_row("Prefix-tuning", "prefix_tuning", method_options(**PREFIX_L10)),
        paper_row("LoRA", "lora", method_options(**LORA_R8_QV)),
        paper_row("Adapter"),
        paper_row("UniPELT (AP)"),
        paper_row("UniPELT (APL)"),
    ),
)
