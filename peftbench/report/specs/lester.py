"""The Power of Scale for Parameter-Efficient Prompt Tuning (Lester et al. 2021): Table 4."""

from peftbench.report.tables import Column, Row, TableSpec

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
    rows=tuple(
        Row(f"{size} L={length}", {"t5_size": size, "prompt_length": str(length)})
        for size in ("Small", "Base", "Large", "XL", "XXL")
        for length in (1, 5, 20, 50, 100, 150)
    ),
)
