"""The survey tables as specs: rows and columns of each published table, and how our records map
onto them (see tables.py for the fields). One spec per reference table that compares methods."""

from peftbench.methods import METHODS
from peftbench.report.tables import Column, Row, TableSpec

ACCURACY = "metrics.final.accuracy"
# Full training sets only: K-shot runs (UniPELT Table 1's setting) stay out of full-data tables.
FULL_DATA = {"task.max_train_samples": None}


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
    paper_model="roberta_base",
    name="lora_table2",
    title="LoRA Table 2 (Hu et al. 2021): GLUE dev",
    reference="lora_table2_glue.csv",
    paper_setting="RoBERTa-base, full GLUE training sets, median of 5 seeds",
    task=None,
    columns=glue_columns(MNLI="mnli", SST_2="sst2", MRPC="mrpc", CoLA="cola", QNLI="qnli", QQP="qqp", RTE="rte", STS_B="stsb"),
    rows=(
        Row("FT", {"model": "RoBERTa-base", "method": "FT"}, "full_ft", FULL_DATA),
        Row("BitFit", {"model": "RoBERTa-base", "method": "BitFit"}, "bitfit", FULL_DATA),
        Row("AdptD (0.3M)", {"model": "RoBERTa-base", "method": "AdapterD (AdptD)", "trainable_params_M": "0.3"}),
        Row("AdptD (0.9M)", {"model": "RoBERTa-base", "method": "AdapterD (AdptD)", "trainable_params_M": "0.9"}),
        Row("LoRA", {"model": "RoBERTa-base", "method": "LoRA"}, "lora",
            {**FULL_DATA, "method.r": 8, "method.target_modules": ["q", "v"]}),
    ),
)

UNIPELT_TABLE4 = TableSpec(
    paper_model="bert_base",
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
        Row("LoRA", {"method": "LoRA"}, "lora", {"method.r": 8, "method.target_modules": ["q", "v"]}),
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

# --- The other comparison tables ------------------------------------------------------------------

# LoRA's weight-type names (Hu et al. Tables 5 and 6) as our model roles.
WEIGHT_TYPE_ROLES = {"Wq": ["q"], "Wk": ["k"], "Wv": ["v"], "Wo": ["attn_out"], "Wq,Wk": ["q", "k"],
                     "Wq,Wv": ["q", "v"], "Wq,Wk,Wv,Wo": ["q", "k", "v", "attn_out"]}
# AdaLoRA's "generalized LoRA" (Wq, Wk, Wv, Wo, Wf1, Wf2); QLoRA adapts the same layers.
ALL_ROLES = ["q", "k", "v", "attn_out", "ffn_in", "ffn_out"]
# Ours only: our RTE accuracy beside a table whose tasks we do not have (the renderer adds "ours").
RTE_OURS = Column("RTE", ours=ACCURACY, task="rte", scale=100.0)


def task_column(label: str, published: str, task: str | None = None, metric: str | None = None,
                decimals: int = 1) -> Column:
    """A task column in percent; our side only where we have the task."""
    return Column(label, published=published, task=task, ours=f"metrics.final.{metric}" if task else None,
                  scale=100.0, decimals=decimals)


def lora_weight_row(weight_types: str, rank: int) -> Row:
    """A row of LoRA Tables 5/6: LoRA on these weight types at this rank."""
    return Row(f"{weight_types} (r={rank})", {"weight_types": weight_types, "rank_r": str(rank)}, "lora",
               {**FULL_DATA, "method.target_modules": WEIGHT_TYPE_ROLES[weight_types], "method.r": rank})


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
        Column("Params M", ours="params.trainable", scale=1e-6, decimals=3),  # our small model's count: 3 decimals
    ),
    rows=(
        Row("FT", {"method": "FT"}, "full_ft", FULL_DATA),
        Row("BitFit", {"method": "BitFit"}, "bitfit", FULL_DATA),
        Row("PreEmbed", {"method": "PreEmbed"}, "prompt_tuning", {**FULL_DATA, "method.num_virtual_tokens": 264}),
        Row("PreLayer", {"method": "PreLayer"}, "p_tuning_v2", {**FULL_DATA, "method.num_virtual_tokens": 8}),
        Row("AdapterH (7.1M)", {"method": "AdapterH", "trainable_params_M": "7.1"}),
        Row("AdapterH (40.1M)", {"method": "AdapterH", "trainable_params_M": "40.1"}),
        Row("LoRA (4.7M)", {"method": "LoRA", "trainable_params_M": "4.7"}, "lora",
            {**FULL_DATA, "method.r": 1, "method.target_modules": ["q", "v"]}),
        Row("LoRA (37.7M)", {"method": "LoRA", "trainable_params_M": "37.7"}, "lora",
            {**FULL_DATA, "method.r": 8, "method.target_modules": ["q", "v"]}),
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
    rows=tuple(lora_weight_row(types, rank) for types, rank in (
        ("Wq", 8), ("Wk", 8), ("Wv", 8), ("Wo", 8), ("Wq,Wk", 4), ("Wq,Wv", 4), ("Wq,Wk,Wv,Wo", 2))),
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
        Column("#Params (M)", published="trainable_params_M", ours="params.trainable", task="rte", scale=1e-6,
               decimals=2),
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
        Row("Full FT", {"method": "Full FT"}, "full_ft", FULL_DATA),
        Row("BitFit", {"method": "BitFit"}, "bitfit", FULL_DATA),
        Row("HAdapter (1.22M)", {"budget_group": "~1.2M", "method": "HAdapter"}),
        Row("PAdapter (1.18M)", {"budget_group": "~1.2M", "method": "PAdapter"}),
        Row("LoRA r=8", {"budget_group": "~1.2M", "method": "LoRA r=8"}, "lora",
            {**FULL_DATA, "method.r": 8, "method.target_modules": ALL_ROLES}),
        Row("AdaLoRA (1.27M)", {"budget_group": "~1.2M", "method": "AdaLoRA"}, "adalora",
            {**FULL_DATA, "budget.name": "params_1.2m"}),
        Row("HAdapter (0.61M)", {"budget_group": "~0.6M", "method": "HAdapter"}),
        Row("PAdapter (0.60M)", {"budget_group": "~0.6M", "method": "PAdapter"}),
        Row("HAdapter (0.31M)", {"budget_group": "~0.3M", "method": "HAdapter"}),
        Row("PAdapter (0.30M)", {"budget_group": "~0.3M", "method": "PAdapter"}),
        Row("LoRA r=2", {"budget_group": "~0.3M", "method": "LoRA r=2"}, "lora",
            {**FULL_DATA, "method.r": 2, "method.target_modules": ALL_ROLES}),
        Row("AdaLoRA (0.32M)", {"budget_group": "~0.3M", "method": "AdaLoRA"}, "adalora",
            {**FULL_DATA, "budget.name": "params_0.3m"}),
    ),
)


def unipelt_columns() -> tuple[Column, ...]:
    """UniPELT Tables 1 and 3: the paper's metric per task (MRPC/QQP F1, CoLA MCC, STS-B Spearman)."""
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


# UniPELT's methods, ours where we have them (prefix length L=10, LoRA rank 8 on Wq,Wv, as in the paper).
UNIPELT_METHODS = (
    ("Fine-tuning", "full_ft", {}),
    ("BitFit", "bitfit", {}),
    ("Adapter", None, {}),
    ("Prefix-tuning", "prefix_tuning", {"method.num_virtual_tokens": 10}),
    ("Prefix-tuning (L=50)", "prefix_tuning", {"method.num_virtual_tokens": 50}),  # printed at K=100 only
    ("LoRA", "lora", {"method.r": 8, "method.target_modules": ["q", "v"]}),
    ("UniPELT (AP)", None, {}),
    ("UniPELT (APL)", None, {}),
)

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
    rows=tuple(Row(f"K={size} {name}", {"train_size_K": str(size), "method": name}, method,
                   {"task.max_train_samples": size, **where} if method else {})
               for size in (100, 500, 1000) for name, method, where in UNIPELT_METHODS
               if size == 100 or name != "Prefix-tuning (L=50)"),
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
        Row("Fine-tuning", {"method": "Fine-tuning"}, "full_ft", FULL_DATA),
        Row("Adapter", {"method": "Adapter"}),
        Row("Prefix-tuning", {"method": "Prefix-tuning"}, "prefix_tuning",
            {**FULL_DATA, "method.num_virtual_tokens": 10}),
        Row("LoRA", {"method": "LoRA"}, "lora", {**FULL_DATA, "method.r": 8, "method.target_modules": ["q", "v"]}),
        Row("UniPELT (AP)", {"method": "UniPELT (AP)"}),
        Row("UniPELT (AP) -NoGate", {"method": "UniPELT (AP) -NoGate"}),
        Row("UniPELT (APL)", {"method": "UniPELT (APL)"}),
    ),
)

HE2022_TABLE2 = TableSpec(
    paper_model="roberta_base",
    name="he2022_table2",
    title="He et al. 2022 Table 2 (Towards a Unified View): MNLI and SST-2 at a 0.5% budget",
    reference="he2022_table2_mnli_sst2.csv",
    paper_setting="RoBERTa-base, dev set, median of 5 runs; BitFit quoted from Ben Zaken et al.; "
                  "ours: prefix tuning and LoRA at our 0.5% budget (budget=share_0.5pct), params % of our model",
    task="sst2",
    columns=(
        Column("Params %", published="params_pct", ours="params.trainable_share", scale=100.0),
        task_column("MNLI", "mnli_acc"),
        task_column("SST2", "sst2_acc", "sst2", "accuracy"),
    ),
    rows=(
        Row("Full-FT", {"method": "Full-FT"}, "full_ft", FULL_DATA),
        Row("BitFit", {"method": "BitFit"}, "bitfit", FULL_DATA),
        Row("Prefix", {"method": "Prefix"}, "prefix_tuning", {**FULL_DATA, "budget.name": "share_0.5pct"}),
        Row("LoRA", {"method": "LoRA"}, "lora", {**FULL_DATA, "budget.name": "share_0.5pct"}),
        Row("Adapter", {"method": "Adapter"}),
        Row("MAM Adapter", {"method": "MAM Adapter"}),
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
        Row("Full fine-tuning (copied)",
            {"method": "Full fine-tuning (copied from Lewis et al. 2020 / Liu et al. 2020b)"}),
        Row("Full fine-tuning (He et al.'s run)", {"method": "Full fine-tuning (our run)"}, "full_ft", FULL_DATA),
        Row("BitFit", {"method": "BitFit"}, "bitfit", FULL_DATA),
        Row("Prompt tuning", {"method": "Prompt tuning"}, "prompt_tuning", FULL_DATA),
        Row("Prefix tuning (l=200)", {"method": "Prefix tuning"}, "prefix_tuning",
            {**FULL_DATA, "method.num_virtual_tokens": 200}),
        Row("Pfeiffer adapter (r=600)", {"method": "Pfeiffer adapter"}),
        Row("LoRA (ffn, r=102)", {"method": "LoRA (ffn)"}, "lora",
            {**FULL_DATA, "method.r": 102, "method.target_modules": ["ffn_in", "ffn_out"]}),
        Row("PA (ffn, r=1024)", {"method": "Parallel adapter (PA, ffn)"}),
        Row("PA (attn, r=30) + PA (ffn, r=512)", {"method": "PA (attn) + PA (ffn)"}),
        Row("Prefix (attn, l=30) + LoRA (ffn, r=102)", {"method": "Prefix tuning (attn) + LoRA (ffn)"}),
        Row("MAM Adapter (l=30, r=512)", {"method": "MAM Adapter"}),
    ),
)

LESTER_TABLE4 = TableSpec(
    name="lester_table4",
    title="Prompt Tuning Table 4 (Lester et al. 2021): trainable parameters by model size and prompt length",
    reference="lester_table4_prompt_params.csv",
    paper_setting="T5 1.1 (LM-adapted) Small to XXL, prompt length 1 to 150, parameter counts only; "
                  "`python -m peftbench.count +method=prompt_tuning model=t5_v1_1_<size> "
                  "method.num_virtual_tokens=<L>` reproduces the trainable counts and "
                  "reference/published_param_counts.csv checks them (the paper's totals are not reproduced: "
                  "transformers ties T5's output layer to the input embedding; Small L=20 is a typo in the paper)",
    task=None,
    columns=(
        Column("Trainable params", published="trainable_params", decimals=0),
        Column("Total params", published="total_params", decimals=0),
        Column("Trainable %", published="percent_trainable", decimals=5),
    ),
    rows=tuple(Row(f"{size} L={length}", {"t5_size": size, "prompt_length": str(length)})
               for size in ("Small", "Base", "Large", "XL", "XXL") for length in (1, 5, 20, 50, 100, 150)),
)

PEFT_README_MEMORY = TableSpec(
    name="peft_readme_memory",
    title="HF PEFT README: GPU/CPU memory of full fine-tuning vs LoRA, per model (paper only; peftbench's own "
          "memory numbers are in the methods_measured table)",
    reference="peft_readme_memory.csv",
    paper_setting="huggingface/peft README, RAFT twitter_complaints on a single A100 80GB with >64GB CPU RAM; "
                  "Full FT OOM = 1 where the README prints 'OOM GPU'",
    task=None,
    columns=(
        Column("Full FT GPU GB", published="full_ft_gpu_gb", decimals=2),
        Column("Full FT CPU GB", published="full_ft_cpu_gb", decimals=2),
        Column("Full FT OOM", published="full_ft_oom", decimals=0),
        Column("LoRA GPU GB", published="lora_pytorch_gpu_gb"),
        Column("LoRA CPU GB", published="lora_pytorch_cpu_gb", decimals=2),
        Column("LoRA + DeepSpeed offload GPU GB", published="lora_deepspeed_cpu_offload_gpu_gb"),
        Column("LoRA + DeepSpeed offload CPU GB", published="lora_deepspeed_cpu_offload_cpu_gb"),
    ),
    rows=(
        Row("bigscience/T0_3B (3B)", {"model": "bigscience/T0_3B"}),
        Row("bigscience/mt0-xxl (12B)", {"model": "bigscience/mt0-xxl"}),
        Row("bigscience/bloomz-7b1 (7B)", {"model": "bigscience/bloomz-7b1"}),
    ),
)

# The same adapters on every row: rank 8 on all linear layers (qlora.yaml's defaults).
QLORA_ADAPTERS = {**FULL_DATA, "method.r": 8, "method.target_modules": ALL_ROLES}

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
        Row("BF16 (full finetuning)", {"method": "BF16 (full finetuning)"}),
        Row("BF16 replication", {"method": "BF16 replication (full finetuning)"}, "full_ft", FULL_DATA),
        Row("LoRA BF16", {"method": "LoRA BF16"}, "lora", QLORA_ADAPTERS),
        Row("QLoRA Int8", {"method": "QLoRA Int8"}, "qlora_8bit", QLORA_ADAPTERS),
        Row("QLoRA FP4", {"method": "QLoRA FP4"}, "qlora", {**QLORA_ADAPTERS, "method.quant_type": "fp4"}),
        Row("QLoRA NF4 + DQ", {"method": "QLoRA NF4 + DQ"}, "qlora",
            {**QLORA_ADAPTERS, "method.quant_type": "nf4", "method.double_quant": True}),
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
    rows=tuple(Row(f"{data} {size}", {"alpaca_or_flan": data, "llama_size": size})
               for size in ("7B", "13B", "33B", "65B") for data in ("Alpaca", "FLAN v2"))
         + (Row("Mean", {"alpaca_or_flan": "mean", "llama_size": "all"}),),
)

SPECS = {spec.name: spec for spec in (
    LORA_TABLE2, UNIPELT_TABLE4, METHODS_MEASURED, LORA_TABLE4, LORA_TABLE5, LORA_TABLE6, ADALORA_TABLE1,
    UNIPELT_TABLE1, UNIPELT_TABLE3, HE2022_TABLE2, HE2022_TABLE6, LESTER_TABLE4, PEFT_README_MEMORY, QLORA_TABLE3,
    QLORA_TABLE4)}
