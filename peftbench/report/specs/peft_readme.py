"""The huggingface/peft README's memory table."""

from peftbench.report.tables import Column, Row, TableSpec

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
