"""LoRA (Hu et al. 2021): Tables 2, 4, 5 and 6."""

from peftbench.report.specs.common import (
    LORA_R8_QV,
    QV,
    RTE_OURS,
    bitfit_row,
    full_data,
    full_ft_row,
    paper_row,
    task_column,
)
from peftbench.report.tables import Column, Row, TableSpec

ROBERTA_BASE = "RoBERTa-base"
# GLUE column label -> our task and its metric (None: a task we do not have).
GLUE_OURS = {
    "MRPC": ("mrpc", "accuracy"),
    "CoLA": ("cola", "matthews_corr"),
    "RTE": ("rte", "accuracy"),
    "STS-B": ("stsb", "pearson"),
    "SST-2": ("sst2", "accuracy"),
    "MNLI": (None, None),
    "QNLI": (None, None),
    "QQP": (None, None),
}
# LoRA's weight-type names (Tables 5 and 6) as our model roles.
WEIGHT_TYPE_ROLES = {
    "Wq": ["q"],
    "Wk": ["k"],
    "Wv": ["v"],
    "Wo": ["attn_out"],
    "Wq,Wk": ["q", "k"],
    "Wq,Wv": ["q", "v"],
    "Wq,Wk,Wv,Wo": ["q", "k", "v", "attn_out"],
}


def glue_columns(**published: str) -> tuple[Column, ...]:
    """GLUE task columns in percent, labelled as keyword (STS_B -> STS-B), each from the CSV column given."""
    columns = []
    for keyword, csv_column in published.items():
        label = keyword.replace("_", "-")
        columns.append(task_column(label, csv_column, *GLUE_OURS[label]))
    return tuple(columns)


def lora_weight_row(weight_types: str, rank: int) -> Row:
    """A row of Tables 5/6: LoRA on these weight types at this rank."""
    return Row(
        f"{weight_types} (r={rank})",
        {"weight_types": weight_types, "rank_r": str(rank)},
        "lora",
        full_data(target_modules=WEIGHT_TYPE_ROLES[weight_types], r=rank),
    )


LORA_TABLE2 = TableSpec(
    paper_model="roberta_base",
    name="lora_table2",
    title="LoRA Table 2 (Hu et al. 2021): GLUE dev",
    reference="lora_table2_glue.csv",
    paper_setting="RoBERTa-base, full GLUE training sets, median of 5 seeds",
    task=None,
    columns=glue_columns(
        MNLI="mnli", SST_2="sst2", MRPC="mrpc", CoLA="cola", QNLI="qnli", QQP="qqp", RTE="rte", STS_B="stsb"
    ),
    rows=(
        full_ft_row("FT", model=ROBERTA_BASE),
        bitfit_row(model=ROBERTA_BASE),
        Row("AdptD (0.3M)", {"model": ROBERTA_BASE, "method": "AdapterD (AdptD)", "trainable_params_M": "0.3"}),
        Row("AdptD (0.9M)", {"model": ROBERTA_BASE, "method": "AdapterD (AdptD)", "trainable_params_M": "0.9"}),
        paper_row("LoRA", "lora", full_data(**LORA_R8_QV), model=ROBERTA_BASE),
    ),
)

LORA_TABLE4 = TableSpec(
    paper_model="gpt3_175b",
    name="lora_table4",
    title="LoRA Table 4 (Hu et al. 2021): GPT-3 175B, our RTE as a small-model analogue",
    reference="lora_table4_gpt3.csv",
    paper_setting="GPT-3 175B on WikiSQL (logical-form acc), MNLI-m and SAMSum (ROUGE-1/2/L), validation; "
    "our rows at the settings reference/published_param_counts.csv maps the paper's rows to "
    "(LoRA r=1 and r=8 on q,v; PreEmbed = prompt tuning with 264 tokens; PreLayer = P-tuning v2 "
    "with 8 tokens); our params include the task head",
    task="rte",
    columns=(
        Column("Params (M)", published="trainable_params_M"),
        task_column("WikiSQL", "wikisql_lf_acc"),
        task_column("MNLI-m", "mnli_m_acc"),
        task_column("SAMSum R1", "samsum_rouge1"),
        task_column("SAMSum R2", "samsum_rouge2"),
        task_column("SAMSum RL", "samsum_rougeL"),
        RTE_OURS,
        # our small model's count: 3 decimals; the rows' sizes are the experiment, so no best
        Column("Params M", ours="params.trainable", scale=1e-6, ranked=False, decimals=3),
    ),
    rows=(
        full_ft_row("FT"),
        bitfit_row(),
        paper_row("PreEmbed", "prompt_tuning", full_data(num_virtual_tokens=264)),
        paper_row("PreLayer", "p_tuning_v2", full_data(num_virtual_tokens=8)),
        Row("AdapterH (7.1M)", {"method": "AdapterH", "trainable_params_M": "7.1"}),
        Row("AdapterH (40.1M)", {"method": "AdapterH", "trainable_params_M": "40.1"}),
        Row("LoRA (4.7M)", {"method": "LoRA", "trainable_params_M": "4.7"}, "lora", full_data(r=1, target_modules=QV)),
        Row("LoRA (37.7M)", {"method": "LoRA", "trainable_params_M": "37.7"}, "lora", full_data(**LORA_R8_QV)),
    ),
)

LORA_TABLE5 = TableSpec(
    paper_model="gpt3_175b",
    name="lora_table5",
    title="LoRA Table 5 (Hu et al. 2021): which attention weights to adapt at a fixed 18M-parameter budget",
    reference="lora_table5_weight_types.csv",
    paper_setting="GPT-3 175B, all 96 layers, WikiSQL and MultiNLI validation accuracy; "
    "ours: LoRA on the same weight types at the same ranks",
    task="rte",
    columns=(task_column("WikiSQL", "wikisql_acc"), task_column("MultiNLI", "mnli_acc"), RTE_OURS),
    rows=tuple(
        lora_weight_row(types, rank)
        for types, rank in (("Wq", 8), ("Wk", 8), ("Wv", 8), ("Wo", 8), ("Wq,Wk", 4), ("Wq,Wv", 4), ("Wq,Wk,Wv,Wo", 2))
    ),
)

LORA_TABLE6 = TableSpec(
    paper_model="gpt3_175b",
    name="lora_table6",
    title="LoRA Table 6 (Hu et al. 2021): rank r per weight-type set",
    reference="lora_table6_rank.csv",
    paper_setting="GPT-3 175B, WikiSQL and MultiNLI validation accuracy; ours: LoRA on the same weight types at "
    "the same ranks",
    task="rte",
    columns=(task_column("WikiSQL", "wikisql_acc"), task_column("MultiNLI", "mnli_acc"), RTE_OURS),
    rows=tuple(lora_weight_row(types, rank) for types in ("Wq", "Wq,Wv", "Wq,Wk,Wv,Wo") for rank in (1, 2, 4, 8, 64)),
)


GPT2_M = {"model": "GPT-2 M"}  # the table's GPT-2 Medium rows (GPT-2 L's have no method of ours beside them)
LORA_TABLE3 = TableSpec(
    paper_model="gpt2_medium",
    name="lora_table3",
    title="LoRA Table 3 (Hu et al. 2021): GPT-2 on the E2E NLG Challenge, with what tuning cost in general text",
    reference="lora_table3_gpt2_e2e.csv",
    paper_setting="GPT-2 Medium on E2E (the official train set), test set, beam search; our rows: the methods at "
    "their defaults (AdapterH = adapter_houlsby, PreLayer = prefix_tuning), greedy decoding",
    task="e2e_nlg",
    columns=(
        Column("BLEU", published="bleu", ours="metrics.final.bleu"),
        Column("NIST", published="nist", ours="metrics.final.nist", decimals=2),
        Column("MET", published="meteor", ours="metrics.final.meteor"),
        Column("ROUGE-L", published="rouge_l", ours="metrics.final.rouge_l"),
        Column("CIDEr", published="cider", ours="metrics.final.cider", decimals=2),
        Column("Forgetting (loss +)", ours="metrics.forgetting.increase", decimals=3),
        Column("Params M", ours="params.trainable", scale=1e-6, ranked=False, decimals=3),
    ),
    rows=(
        Row("FT", {**GPT2_M, "method": "FT"}, "full_ft"),
        Row("AdapterH", {**GPT2_M, "method": "AdapterH"}, "adapter_houlsby"),
        Row("PreLayer", {**GPT2_M, "method": "PreLayer"}, "prefix_tuning"),
        Row("LoRA", {**GPT2_M, "method": "LoRA"}, "lora"),
    ),
)
