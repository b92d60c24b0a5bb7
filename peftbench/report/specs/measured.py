"""Ours: the surveys' qualitative method table (Lialin et al. 2023), measured; no published numbers."""

from peftbench.report.tables import Column, TableSpec

METHODS_MEASURED = TableSpec(
    name="methods_measured",
    title="Every method measured the same way: accuracy, storage, memory, speed and inference overhead",
    reference=None,
    paper_setting="none (Lialin et al. 2023 give these qualitatively)",
    task="rte",
    columns=(
        Column("Accuracy", ours="metrics.final.accuracy", decimals=3),
        Column("Trainable params %", ours="params.trainable_share", decimals=3),
        Column("Stored params %", ours="params.stored_share", decimals=3),
        Column("Peak train memory % of FT", ours="memory.peak_train_bytes", relative_to="full_ft"),
        Column("Step time % of FT", ours="throughput.median_step_seconds", relative_to="full_ft"),
        Column("Inference overhead % (unmerged)", ours="latency.method.overhead_pct"),
        Column("Inference overhead % (merged)", ours="latency.merged.overhead_pct"),
        Column("Checkpoint MB", ours="checkpoint.bytes", decimals=2),
    ),
    rows=(),
    method_rows=True,  # one per method our records hold, named with its recorded family
    report_task=True,  # python -m peftbench.report task=sst2: this table on SST-2
)

GENERATION_MEASURED = TableSpec(
    name="generation_measured",
    title="Every method on a generation task: quality, what tuning cost in general text, and its costs",
    reference=None,
    paper_setting="none (ours)",
    task="e2e_nlg",
    columns=(
        Column("BLEU", ours="metrics.final.bleu"),
        Column("ROUGE-L", ours="metrics.final.rouge_l"),
        Column("CIDEr", ours="metrics.final.cider", decimals=2),
        Column("Forgetting (general-text loss +)", ours="metrics.forgetting.increase", decimals=3),
        Column("Trainable params %", ours="params.trainable_share", decimals=3),
        Column("Peak train memory MiB", ours="memory.peak_train_bytes", decimals=0),
        Column("Median step s", ours="throughput.median_step_seconds", decimals=2),
        Column("Checkpoint MB", ours="checkpoint.bytes", decimals=2),
    ),
    rows=(),
    method_rows=True,  # one per method our records of the task and model hold
)
