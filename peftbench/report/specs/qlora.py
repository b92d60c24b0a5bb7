"""QLoRA (Dettmers et al. 2023): Tables 3 and 4."""

from peftbench.report.specs.common import ALL_ROLES, RTE_OURS, full_data, full_ft_row, paper_row, task_column
from peftbench.report.tables import Column, Row, TableSpec

# The same adapters on every row: rank 8 on all linear layers (qlora.yaml's defaults).
QLORA_ADAPTERS = {"r": 8, "target_modules": ALL_ROLES}

QLORA_TABLE3 = TableSpec(
    name="qlora_table3",
    title="QLoRA Table 3 (Dettmers et al. 2023): 16-bit, 8-bit and 4-bit adapter finetuning vs full finetuning",
    reference="qlora_table3_glue_sni.csv",
    paper_setting="RoBERTa-large on GLUE (accuracy) and T5 80M to 11B on Super-NaturalInstructions (RougeL); "
    "ours: LoRA r=8 on all linear layers (as QLoRA) on every adapter row, and full fine-tuning "
    "beside the paper's own run of it (the replication row)",
    task="rte",
    columns=(
        task_column("GLUE", "glue_roberta_large_acc"),
        task_column("SNI T5-80M", "sni_t5_80m_rougeL"),
        task_column("SNI T5-250M", "sni_t5_250m_rougeL"),
        task_column("SNI T5-780M", "sni_t5_780m_rougeL"),
        task_column("SNI T5-3B", "sni_t5_3b_rougeL"),
        task_column("SNI T5-11B", "sni_t5_11b_rougeL"),
        RTE_OURS,
    ),
    rows=(
        paper_row("BF16 (full finetuning)"),
        full_ft_row("BF16 replication", "BF16 replication (full finetuning)"),
        paper_row("LoRA BF16", "lora", full_data(**QLORA_ADAPTERS)),
        paper_row("QLoRA Int8", "qlora_8bit", full_data(**QLORA_ADAPTERS)),
        paper_row("QLoRA FP4", "qlora", full_data(**QLORA_ADAPTERS, quant_type="fp4")),
        paper_row("QLoRA NF4 + DQ", "qlora", full_data(**QLORA_ADAPTERS, quant_type="nf4", double_quant=True)),
    ),
)

QLORA_TABLE4 = TableSpec(
    name="qlora_table4",
    title="QLoRA Table 4 (Dettmers et al. 2023): 5-shot MMLU by the base model's data type (paper only)",
    reference="qlora_table4_mmlu.csv",
    paper_setting="LLaMA 7B to 65B with BF16 LoRA adapters, finetuned on Alpaca or FLAN v2, mean 5-shot MMLU test "
    "accuracy; the printed NF4 + DQ mean (53.1) is not the mean of its 8 cells (52.99)",
    task=None,
    columns=(
        Column("BFloat16", published="bfloat16"),
        Column("Float4", published="float4"),
        Column("NFloat4 + DQ", published="nfloat4_dq"),
    ),
    rows=tuple(
        Row(f"{data} {size}", {"alpaca_or_flan": data, "llama_size": size})
        for size in ("7B", "13B", "33B", "65B")
        for data in ("Alpaca", "FLAN v2")
    )
    + (Row("Mean", {"alpaca_or_flan": "mean", "llama_size": "all"}),),
)
