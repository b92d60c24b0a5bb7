"""The survey tables as specs, one module per paper: rows and columns of each published table, and how our
records map onto them (see tables.py for the fields; common.py for what the tables share). One spec per
reference table that compares methods, and our own measured table."""

from peftbench.report.specs.adalora import ADALORA_TABLE1
from peftbench.report.specs.he2022 import HE2022_TABLE2, HE2022_TABLE6
from peftbench.report.specs.lester import LESTER_TABLE4
from peftbench.report.specs.lora import LORA_TABLE2, LORA_TABLE3, LORA_TABLE4, LORA_TABLE5, LORA_TABLE6
from peftbench.report.specs.measured import GENERATION_MEASURED, METHODS_MEASURED
from peftbench.report.specs.peft_readme import PEFT_README_MEMORY
from peftbench.report.specs.qlora import QLORA_TABLE3, QLORA_TABLE4
from peftbench.report.specs.unipelt import UNIPELT_TABLE1, UNIPELT_TABLE3, UNIPELT_TABLE4

SPECS = {
    spec.name: spec
    for spec in (
        LORA_TABLE2,
        LORA_TABLE3,
        UNIPELT_TABLE4,
        METHODS_MEASURED,
        GENERATION_MEASURED,
        LORA_TABLE4,
        LORA_TABLE5,
        LORA_TABLE6,
        ADALORA_TABLE1,
        UNIPELT_TABLE1,
        UNIPELT_TABLE3,
        HE2022_TABLE2,
        HE2022_TABLE6,
        LESTER_TABLE4,
        PEFT_README_MEMORY,
        QLORA_TABLE3,
        QLORA_TABLE4,
    )
}

__all__ = ["SPECS"]
