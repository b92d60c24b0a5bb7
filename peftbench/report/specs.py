"""The survey tables as specs: rows and columns of each published table, and how our records map
onto them (see tables.py for the fields). One spec per reference table that compares methods."""

from peftbench.methods import METHODS
from peftbench.report.tables import Column, Row, TableSpec

ACCURACY = "metrics.final.accuracy"


def glue_columns(**published: str) -> tuple[Column, ...]:
    """GLUE task columns, as percentages: label -> (our task, our metric, the CSV column given)."""
    ours = {"MRPC": ("mrpc", "accuracy"), "CoLA": ("cola", "matthews_corr"), "RTE": ("rte", "accuracy"),
            "STS-B": ("stsb", "pearson"), "SST-2": ("sst2", "accuracy"), "MNLI": (None, None), "QNLI": (None, None),
            "QQP": (None, None)}
    columns = []
    for label, csv_column in published.items():
        task, metric = ours[label.replace("_", "-")]
        columns.append(Column(label.replace("_", "-"), published=csv_column, task=task,
                              ours=f"metrics.final.{metric}" if metric else None, scale=100.0))
    return tuple(columns)


LORA_TABLE2 = TableSpec(
    name="lora_table2",
    title="LoRA Table 2 (Hu et al. 2021): GLUE dev",
    reference="lora_table2_glue.csv",
    paper_setting="RoBERTa-base, full GLUE training sets, median of 5 seeds",
    task=None,
    columns=glue_columns(MNLI="mnli", SST_2="sst2", MRPC="mrpc", CoLA="cola", QNLI="qnli", QQP="qqp", RTE="rte", STS_B="stsb"),
    rows=(
        Row("FT", {"model": "RoBERTa-base", "method": "FT"}, "full_ft"),
        Row("BitFit", {"model": "RoBERTa-base", "method": "BitFit"}, "bitfit"),
        Row("AdptD (0.3M)", {"model": "RoBERTa-base", "method": "AdapterD (AdptD)", "trainable_params_M": "0.3"}),
        Row("AdptD (0.9M)", {"model": "RoBERTa-base", "method": "AdapterD (AdptD)", "trainable_params_M": "0.9"}),
        Row("LoRA", {"model": "RoBERTa-base", "method": "LoRA"}, "lora", {"method.r": 8}),
    ),
)

UNIPELT_TABLE4 = TableSpec(
    name="unipelt_table4",
    title="UniPELT Table 4 (Mao et al. 2022): efficiency, relative to fine-tuning (FT = 100)",
    reference="unipelt_table4_efficiency.csv",
    paper_setting="BERT-base on GLUE; prefix L=10, adapter bottleneck 48, LoRA rank 8",
    task="rte",
    columns=(
        Column("Params %", published="trainable_params_pct", ours="params.trainable_share", scale=100.0,
               higher_is_better=False, decimals=2),
        Column("Train time %", published="train_time_rel_ft_pct", ours="throughput.median_step_seconds",
               relative_to="Fine-tuning", higher_is_better=False, decimals=0),
        Column("Inference time %", published="inference_time_rel_ft_pct", ours="latency.method.median_ms",
               relative_to="Fine-tuning", higher_is_better=False, decimals=0),
    ),
    rows=(
        Row("Fine-tuning", {"method": "Fine-tuning"}, "full_ft"),
        Row("BitFit", {"method": "BitFit"}, "bitfit"),
        Row("Prefix-tuning", {"method": "Prefix-tuning"}, "prefix_tuning", {"method.num_virtual_tokens": 10}),
        Row("LoRA", {"method": "LoRA"}, "lora", {"method.r": 8}),
        Row("Adapter", {"method": "Adapter"}),
        Row("UniPELT (AP)", {"method": "UniPELT (AP)"}),
        Row("UniPELT (APL)", {"method": "UniPELT (APL)"}),
    ),
)

# The surveys' qualitative method table (Lialin et al. 2023), measured: no published numbers.
METHODS_MEASURED = TableSpec(
    name="methods_measured",
    title="Every method measured the same way: storage, memory, speed and inference overhead",
    reference=None,
    paper_setting="none (Lialin et al. 2023 give these qualitatively)",
    task="rte",
    columns=(
        Column("Stored params %", ours="params.stored_share", scale=100.0, higher_is_better=False, decimals=3),
        Column("Peak train memory % of FT", ours="memory.peak_train_bytes", relative_to="full_ft (baseline)", higher_is_better=False),
        Column("Step time % of FT", ours="throughput.median_step_seconds", relative_to="full_ft (baseline)", higher_is_better=False),
        Column("Inference overhead % (unmerged)", ours="latency.method.overhead_pct", higher_is_better=False),
        Column("Inference overhead % (merged)", ours="latency.merged.overhead_pct", higher_is_better=False),
        Column("Checkpoint MB", ours="checkpoint.bytes", scale=1e-6, higher_is_better=False, decimals=2),
    ),
    rows=tuple(Row(f"{name} ({method.family})", method=name) for name, method in sorted(METHODS.items())),
)

SPECS = {spec.name: spec for spec in (LORA_TABLE2, UNIPELT_TABLE4, METHODS_MEASURED)}
