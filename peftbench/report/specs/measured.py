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
