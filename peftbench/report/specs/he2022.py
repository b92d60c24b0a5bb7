"""Towards a Unified View of Parameter-Efficient Transfer Learning (He et al. 2022): Tables 2 and 6."""

from peftbench.report.specs.common import (
    bitfit_row,
    full_data,
    full_data_at_budget,
    full_ft_row,
    paper_row,
    task_column,
)
from peftbench.report.tables import Column, Row, TableSpec

HE2022_TABLE2 = TableSpec(
    paper_model="roberta_base",
    name="he2022_table2",
    title="He et al. 2022 Table 2 (Towards a Unified View): MNLI and SST-2 at a 0.5% budget",
    reference="he2022_table2_mnli_sst2.csv",
    paper_setting="RoBERTa-base, dev set, median of 5 runs; BitFit quoted from Ben Zaken et al.; "
    "ours: prefix tuning and LoRA at our 0.5% budget (budget=share_0.5pct), params % of our model",
    task="sst2",
    columns=(
        # the rows are matched on their budget: no best share
        Column("Params %", published="params_pct", ours="params.trainable_share", scale=100.0, ranked=False),
        task_column("MNLI", "mnli_acc"),
        task_column("SST2", "sst2_acc", "sst2", "accuracy"),
    ),
    rows=(
        full_ft_row("Full-FT"),
        bitfit_row(),
        paper_row("Prefix", "prefix_tuning", full_data_at_budget("share_0.5pct")),
        paper_row("LoRA", "lora", full_data_at_budget("share_0.5pct")),
        paper_row("Adapter"),
        paper_row("MAM Adapter"),
    ),
)

# Generation tasks we do not have: the paper's numbers only; rows name our methods for when we do.
HE2022_TABLE6 = TableSpec(
    name="he2022_table6",
    title="He et al. 2022 Table 6 (Towards a Unified View): XSum and en-ro (paper only; we have no generation task)",
    reference="he2022_table6_xsum_enro.csv",
    paper_setting="BART-large on XSum (test ROUGE-1/2/L, 3 seeds), mBART-large on WMT16 en-ro (test BLEU); "
    "the copied full fine-tuning row is from Lewis et al. 2020 / Liu et al. 2020b",
    task=None,
    columns=(
        Column("Params %", published="params_pct"),
        task_column("XSum R-1", "xsum_r1", decimals=2),
        task_column("XSum R-2", "xsum_r2", decimals=2),
        task_column("XSum R-L", "xsum_rl", decimals=2),
        task_column("en-ro BLEU", "enro_bleu"),
    ),
    rows=(
        Row(
            "Full fine-tuning (copied)",
            {"method": "Full fine-tuning (copied from Lewis et al. 2020 / Liu et al. 2020b)"},
        ),
        full_ft_row("Full fine-tuning (He et al.'s run)", "Full fine-tuning (our run)"),
        bitfit_row(),
        paper_row("Prompt tuning", "prompt_tuning", full_data()),
        Row("Prefix tuning (l=200)", {"method": "Prefix tuning"}, "prefix_tuning", full_data(num_virtual_tokens=200)),
        Row("Pfeiffer adapter (r=600)", {"method": "Pfeiffer adapter"}),
        Row(
            "LoRA (ffn, r=102)",
            {"method": "LoRA (ffn)"},
            "lora",
            full_data(r=102, target_modules=["ffn_in", "ffn_out"]),
        ),
        Row("PA (ffn, r=1024)", {"method": "Parallel adapter (PA, ffn)"}),
        Row("PA (attn, r=30) + PA (ffn, r=512)", {"method": "PA (attn) + PA (ffn)"}),
        Row("Prefix (attn, l=30) + LoRA (ffn, r=102)", {"method": "Prefix tuning (attn) + LoRA (ffn)"}),
        Row("MAM Adapter (l=30, r=512)", {"method": "MAM Adapter"}),
    ),
)
