"""Published "# trainable parameters" cells reproduced on the meta device (reference/published_param_counts.csv).
A row marked reproduced=no must still differ, and say why."""

import csv

import psutil
import pytest

from peftbench import CONF_DIR
from peftbench.count import count

from conftest import compose_config

ROWS = list(csv.DictReader(open(CONF_DIR.parent / "reference" / "published_param_counts.csv")))
UNITS = {"M": 1e6, "K": 1e3, "1": 1, "%": 0.01}
QUANTITIES = {
    "method": "method_params",
    "total": "total",
    "stored": "method_stored",
    "stored_share": "stored_share",
}  # which count a row's published number is (stored: after training-only parts are dropped)


def row_id(row):
    published = f"{row['published']}{row['unit']}"
    return f"{row['paper']}-{row['table']}-{row['published_model']}-{row['published_method']}-{published}"


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_published_trainable_count(row):
    cfg = compose_config([f"+method={row['method']}", f"model={row['model']}", *row["overrides"].split()])
    ours = count(cfg)[QUANTITIES[row["quantity"]]]
    rounded = round(ours / UNITS[row["unit"]], int(row["decimals"]))
    assert row["source"] and row["note"]
    if row["reproduced"] == "yes":
        assert rounded == float(row["published"]), f"ours {ours:,}"
    else:
        assert rounded != float(row["published"]), "now reproduced: update the row"
    if row["expected_difference"]:  # the row explains the gap exactly
        assert float(row["published"]) * UNITS[row["unit"]] - ours == int(row["expected_difference"])


def test_count_splits_added_and_unfrozen_and_keeps_the_head_apart():
    lora = count(compose_config(["+method=lora", "model=bert_base"]))
    assert (lora["added"], lora["unfrozen"]) == (294_912, 0) and lora["head_params"] == 768 * 2 + 2
    full = count(compose_config(["+method=full_ft", "model=bert_base"]))
    assert full["unfrozen"] + full["head_params"] == full["total"] == 109_483_778


def test_gpt3_is_counted_without_memory():
    rss_before = psutil.Process().memory_info().rss
    result = count(compose_config(["+method=lora", "model=gpt3_175b", "method.r=1"]))
    assert result["total"] == 174_608_977_920  # 349 GB of fp16 weights, were they allocated
    assert psutil.Process().memory_info().rss - rss_before < 2**30


def test_the_count_command_prints_the_split_as_a_user_runs_it(tmp_path):
    """The command itself, in a fresh process (its Hydra folder names need the project's resolvers)."""
    import json
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "peftbench.count",
            "+method=prompt_tuning",
            "model=tiny_bert",
            f"hydra.run.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["added"] == counts["method_params"] > 0 and counts["unfrozen"] == 0
    assert f"added {counts['added']:,}, existing unfrozen 0" in result.stdout
