"""Published "# trainable parameters" cells reproduced on the meta device (reference/published_param_counts.csv).
A row marked reproduced=no must still differ, and say why."""

import psutil
import pytest
import torch

from peftbench.count import count
from peftbench.paper_counts import UNITS, ours_for, published_rows, rounded

from conftest import compose_config

ROWS = published_rows()


def row_id(row):
    published = f"{row['published']}{row['unit']}"
    return f"{row['paper']}-{row['table']}-{row['published_model']}-{row['published_method']}-{published}"


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_published_trainable_count(row):
    ours = ours_for(row)
    assert row["source"] and row["note"]
    if row["reproduced"] == "yes":
        assert rounded(row, ours) == float(row["published"]), f"ours {ours:,}"
    else:
        assert rounded(row, ours) != float(row["published"]), "now reproduced: update the row"
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_the_count_command_checks_the_method_values_and_solves_a_budget_as_a_run_does(tmp_path):
    import json
    import subprocess
    import sys

    def count_command(*overrides):
        command = [sys.executable, "-m", "peftbench.count", "+method=lora", *overrides, f"hydra.run.dir={tmp_path}"]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)

    bad = count_command("method.r=0")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: method.r=0 is not valid: it must be a whole number of at least 1."
    solved = count_command("budget=params_0.3m")
    assert solved.returncode == 0, solved.stderr[-2000:]
    counts = json.loads(solved.stdout.strip().splitlines()[-1])
    rank = counts["budget"]["value"]
    assert counts["options"]["r"] == rank and f"budget params_0.3m: method.r={rank}" in solved.stdout
    assert counts["budget"]["achieved_params"] == counts["method_params"]  # the head is not in a budget


def test_the_committed_count_table_holds_every_published_row_with_its_verdict():
    """results/published/counts.json (make published-counts) is of the reference file as it is now; the counts
    themselves are checked by test_published_trainable_count above."""
    import json

    from peftbench import published
    from peftbench.paper_counts import table_lines

    if not published.COUNTS.is_file():
        pytest.skip("no counts.json in this checkout: make published-counts")
    document = json.loads(published.COUNTS.read_text())
    keys = ("paper", "table", "published_model", "published_method", "published", "model", "method", "overrides")
    assert [[row[k] for k in keys] for row in document["rows"]] == [[row[k] for k in keys] for row in ROWS]
    for row in document["rows"]:
        assert row["matches"] == (row["reproduced"] == "yes") == (rounded(row, row["ours"]) == float(row["published"]))
    lines = table_lines(document)
    assert len(lines) == 2 + len(ROWS) + 2
    differing = [row for row in document["rows"] if not row["matches"]]
    assert all(f"differs: {row['note']}" in "\n".join(lines) for row in differing)
    assert lines[-1] == f"{len(ROWS) - len(differing)} of {len(ROWS)} published counts reproduced exactly."


@pytest.mark.parametrize("method, options", [("fourierft", []), ("shira", ["method.r=2"]), ("intrinsic_said", [])])
def test_counting_with_the_identity_permutation_changes_no_count(method, options):
    """shapes_only() makes torch.randperm the identity while a method is applied for counting: the counts
    equal those of the method applied with its own random permutations, and randperm is restored after."""
    from peftbench.measure import parameter_split
    from peftbench.models import build_meta_model, shapes_only
    from peftbench.plan import apply_method, plan_run

    cfg = compose_config([f"+method={method}", "model=tiny_bert", *options])
    plan = plan_run(cfg)
    randperm = torch.randperm
    with shapes_only():
        fast = parameter_split(apply_method(build_meta_model(cfg.model, plan.num_labels), plan), set(), set())
    assert torch.randperm is randperm
    slow = parameter_split(apply_method(build_meta_model(cfg.model, plan.num_labels), plan), set(), set())
    assert fast == slow and fast["trainable"] > 0


def test_a_method_that_reads_the_weights_as_it_is_set_up_is_not_counted_and_says_so():
    from peftbench.plan import NotCountable

    with pytest.raises(NotCountable, match="^Method 'frod' reads the base model's weights as it is set up"):
        count(compose_config(["+method=frod", "model=tiny_bert"]))


def test_adamss_is_counted_on_the_meta_device_at_k_times_r_plus_out_per_matrix():
    cfg = compose_config(["+method=adamss", "model=tiny_bert", "method.r=8", "method.num_subspaces=3"])
    width, layers = cfg.model.architecture.hidden_size, cfg.model.architecture.num_hidden_layers
    assert count(cfg)["method_params"] == 2 * layers * (3 * 8 + width)  # q and v in every layer
