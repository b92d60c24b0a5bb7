"""Budgets, sweep files, launchers and resumable multiruns."""

import json
import sys

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from test_checkpoints import classifier_for
from test_cli import peftbench

from peftbench import CONF_DIR
from peftbench.budget import BudgetError, exact_counts, solve_budget, with_knob
from peftbench.cli import check_group_choices
from peftbench.methods import METHODS

from conftest import REPO_ROOT, TINY_RUN, compose_config

SWEEPS = REPO_ROOT / "sweeps"
KNOB_METHODS = sorted(name for name, method in METHODS.items() if method.size_knob)
MODEL_OVERRIDES = {"s4": ["model.architecture.num_hidden_layers=4"]}  # S4's four layer groups need four layers


# --- budgets ----------------------------------------------------------------------------------


# Targets near the small end, the middle and the large end of each knob's range. The solver's search is shared;
# what differs per method is how its knob sets its count: each method at one of the three targets in turn, LoRA
# at all three (the three positions for every method were 3x the cases and the same search).
FRACTIONS = (0.1, 0.45, 0.9)
BUDGET_CASES = [
    (method, fraction)
    for index, method in enumerate(KNOB_METHODS)
    for fraction in (FRACTIONS if method == "lora" else FRACTIONS[index % 3 : index % 3 + 1])
]


@pytest.mark.parametrize("method, fraction", BUDGET_CASES)
def test_budget_solver_is_within_one_knob_step(method, fraction):
    model_overrides = [f"model={classifier_for(method)}", *MODEL_OVERRIDES.get(method, [])]
    base = compose_config([f"+method={method}", "+task=rte", *model_overrides])
    limit, lowest = METHODS[method].size_knob_limit, METHODS[method].size_knob_min
    top = min(64, (limit(base) if limit else None) or 64)
    smallest, largest = (exact_counts(with_knob(base, METHODS[method], v))[0] for v in (lowest, top))
    target = int(smallest + fraction * (largest - smallest))  # reachable: between the knob's ends
    cfg = compose_config([f"+method={method}", "+task=rte", *model_overrides, f"budget.params={target}"])
    solved, budget = solve_budget(cfg)
    knob, value = budget["knob"], budget["value"]
    assert solved.method[knob] == value and budget["achieved_params"] == exact_counts(solved)[0]
    neighbours = [exact_counts(with_knob(cfg, METHODS[method], v))[0] for v in (value - 1, value + 1) if v >= lowest]
    assert all(abs(budget["achieved_params"] - target) <= abs(n - target) for n in neighbours)


def test_share_budget_and_record(tiny_run_config):
    from peftbench.recipe import run

    record = run(tiny_run_config("lora", "budget=share_0.5pct", "trainer.max_steps=2")).record
    budget = record["budget"]
    assert budget["target_share"] == 0.005 and budget["knob"] == "r"
    assert (
        record["config"]["method"]["r"] == budget["value"]
        and record["params"]["trainable"] == budget["achieved_params"]
    )


def test_a_budget_below_the_minimum_names_the_smallest_count():
    cfg = compose_config(["+method=lora", "+task=rte", "model=tiny_bert", "budget.params=100"])
    smallest = exact_counts(with_knob(cfg, METHODS["lora"], 1))[0]
    with pytest.raises(
        BudgetError,
        match=f"below the smallest that lora reaches on tiny_bert: {smallest:,} trainable parameters \\(r=1\\)",
    ):
        solve_budget(cfg)
    full = compose_config(["+method=full_ft", "+task=rte", "model=tiny_bert", "budget.params=50000"])
    everything = exact_counts(full)[0]
    with pytest.raises(
        BudgetError,
        match=f"full_ft reaches on tiny_bert: {everything:,} trainable parameters \\(it has no size knob\\)",
    ):
        solve_budget(full)


def test_a_budget_above_the_maximum_names_the_largest_count():
    # LoKr's factors become full matrices once r reaches half their size: its count stops growing
    with pytest.raises(
        BudgetError, match=r"above the largest that lokr reaches on tiny_bert: 386 trainable parameters"
    ):
        solve_budget(compose_config(["+method=lokr", "+task=rte", "model=tiny_bert", "budget.params=5000"]))
    # virtual tokens share the 512 positions with the 128 input tokens
    with pytest.raises(
        BudgetError, match=r"above the largest that prompt_tuning reaches on tiny_bert: .* \(num_virtual_tokens=384\)"
    ):
        solve_budget(
            compose_config(["+method=prompt_tuning", "+task=rte", "model=tiny_bert", "budget.params=10000000"])
        )


def test_a_method_without_a_knob_keeps_its_size_under_a_larger_budget():
    cfg = compose_config(["+method=linear_probe", "+task=rte", "model=tiny_bert", "budget=params_0.3m"])
    _, budget = solve_budget(cfg)
    assert budget["knob"] is None and budget["achieved_params"] == 32 * 2 + 2


def test_adamss_is_counted_on_the_meta_device_as_it_trains(tiny_run_config):
    """AdaMSS clusters each weight's rows by K-Means, which a meta tensor cannot feed: its budget check and the
    count tool failed ("Cannot copy out of meta tensor"). The meta count is the trained one."""
    from peftbench.recipe import run

    cfg = tiny_run_config(
        "adamss", "method.r=8", "method.num_subspaces=3", "budget=params_0.3m", "trainer.max_steps=1"
    )
    solved, budget = solve_budget(cfg)
    assert budget["knob"] is None and budget["achieved_params"] == exact_counts(solved)[0]
    assert run(cfg).record["params"]["trainable"] == budget["achieved_params"]


def test_a_method_that_reads_the_weights_as_it_is_set_up_is_refused_a_budget_in_one_sentence():
    cfg = compose_config(["+method=frod", "+task=rte", "model=tiny_bert", "budget=params_0.3m"])
    with pytest.raises(
        BudgetError, match="^Method 'frod' reads the base model's weights as it is set up, so its size"
    ):
        solve_budget(cfg)


def test_adalora_keeps_its_final_rank_below_a_budgets_initial_rank(tiny_run_config):
    """A budget sets init_r; target_r (8 of 12 by default) keeps that share of it, rounded down. At init_r 7 with
    target_r 8 peft's pruning failed at step tinit (kthvalue out of range): the published 0.3M cell on SST-2."""
    from peftbench.recipe import run

    schedule = ("method.tinit=2", "method.tfinal=2", "method.deltaT=1", "trainer.max_steps=8")
    cfg = tiny_run_config("adalora", *schedule)
    at_three = exact_counts(with_knob(cfg, METHODS["adalora"], 3))[0]
    assert with_knob(cfg, METHODS["adalora"], 3).method.target_r == 2  # 3 x 8 / 12
    assert with_knob(cfg, METHODS["adalora"], 2).method.target_r == 1
    budgeted = tiny_run_config("adalora", *schedule, f"budget.params={at_three}")
    record = run(budgeted).record
    assert (record["budget"]["value"], record["config"]["method"]["target_r"]) == (3, 2)
    matrices = len(record["method_state"]["ranks"])
    assert record["method_state"]["total_rank"] == 2 * matrices  # pruned to the scaled target
    with pytest.raises(BudgetError, match=r"below the smallest that adalora reaches on tiny_bert: .* \(init_r=2\)"):
        solve_budget(tiny_run_config("adalora", "budget.params=100"))


# --- sweep files ------------------------------------------------------------------------------

EXPECTED_JOBS = {
    "issue2_rte_seeds": 6,
    "lora_rank_weight_types": 15,
    "methods_x_glue": 28,
    "budget_ladder": 5,
    "low_resource": 60,
    "lr_search": 20,
    "peft_methods_rte": 15,
    "selective_methods_rte": 5,
    "adapter_methods_rte": 11,
}


def expand(name: str) -> list[list[str]]:
    params = OmegaConf.load(SWEEPS / f"{name}.yaml").hydra.sweeper.params
    overrides = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    return BasicSweeper.split_arguments(overrides, None)[0]


def test_every_sweep_file_is_listed():
    assert {p.stem for p in SWEEPS.glob("*.yaml")} == set(EXPECTED_JOBS)
    assert {p.stem for p in (SWEEPS / "wandb_sweeps").glob("*.yaml")} == {"lora_rank", "methods_lr"}


@pytest.mark.parametrize("name", sorted(EXPECTED_JOBS))
def test_sweep_file_composes_and_expands(name):
    jobs = expand(name)
    assert len(jobs) == EXPECTED_JOBS[name]
    for job in (jobs[0], jobs[-1]):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(SWEEPS), version_base="1.3"):
            cfg = compose(config_name=name, overrides=[f"hydra.searchpath=[file://{CONF_DIR}]", *job])
        assert cfg.method.name in METHODS and "task" in cfg


@pytest.mark.parametrize("path", sorted((SWEEPS / "wandb_sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_wandb_sweep_resolves_to_peftbench_overrides(path):
    sweep = yaml.safe_load(path.read_text())
    assert sweep["command"][-3:] == ["-m", "peftbench", "${args_no_hyphens}"]
    arguments = []  # what `wandb agent` passes as ${args_no_hyphens}: key=value per parameter
    for key, spec in sweep["parameters"].items():
        value = spec.get("value", spec.get("values", [spec.get("min")])[0] if "values" in spec else spec.get("min"))
        arguments.append(f"{key}={value}")
    check_group_choices(arguments)  # exits 2 on an unknown method or task
    cfg = compose_config(arguments)
    assert cfg.method.name in METHODS and cfg.task.name == "rte"


# --- launchers and resumable multiruns --------------------------------------------------------


def tiny_multirun(tmp_path, toy_data_dir, *arguments):
    env = {"PEFTBENCH_DATA_DIR": str(toy_data_dir), "PEFTBENCH_RESULTS_DIR": str(tmp_path / "results")}
    tiny = [o for o in TINY_RUN if not o.startswith("num_threads")]  # let the launcher share the cores
    return peftbench(
        "-m",
        "+task=rte",
        "trainer.max_steps=2",
        "checkpoint_dir=null",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        *tiny,
        *arguments,
        env_extra=env,
    )


def records_in(tmp_path) -> dict:
    return {p: json.loads(p.read_text()) for p in sorted((tmp_path / "results").rglob("*.json"))}


@pytest.mark.slow
def test_parallel_multirun_is_resumable_and_survives_a_failing_job(tmp_path, toy_data_dir):
    # ++method.r=4 is an unknown option for bitfit: that job fails, the lora job beside it still runs
    grid = ["hydra/launcher=local_parallel", "+method=lora,bitfit", "seed=2", "++method.r=4"]
    first = tiny_multirun(tmp_path, toy_data_dir, *grid)
    assert first.returncode != 0
    written = records_in(tmp_path)
    assert sorted((r["run"]["method"], r["status"]) for r in written.values()) == [
        ("bitfit", "failed"),
        ("lora", "ok"),
    ]
    failed, ok = sorted(written.values(), key=lambda r: r["status"])
    assert "Unknown option(s) r for method 'bitfit'" in failed["error"]["message"]
    # 2 jobs, 2 cores: the CLI sets each job's share (OMP_NUM_THREADS, which tests set, alone would leave it null)
    assert ok["config"]["num_threads"] == 1 and ok["provenance"]["device_name"].endswith(", 1 threads")

    again = tiny_multirun(tmp_path, toy_data_dir, *grid)  # the ok lora run is skipped, the failed bitfit runs again
    assert again.returncode != 0 and again.stderr.count("skipping: an ok record of this configuration exists") == 1
    after = records_in(tmp_path)
    assert {p: r for p, r in after.items() if p in written} == written and len(after) == len(written) + 1
    (retried,) = (r for p, r in after.items() if p not in written)
    assert (retried["run"]["method"], retried["status"]) == ("bitfit", "failed")


def heldout_record(lr, heldout, score):
    task = {"name": "rte", "heldout_fraction": 0.1 if heldout else None}
    return {
        "status": "ok",
        "run": {"method": "lora", "task": "rte", "model": "m"},
        "config": {"task": task, "trainer": {"lr": lr}},
        "metrics": {"main_metric": "accuracy", "final": {"accuracy": score}},
    }


def test_choose_picks_by_heldout_metric_only():
    from peftbench.choose import choose

    record = heldout_record
    records = [
        record(1e-4, True, 0.60),
        record(1e-4, True, 0.62),
        record(1e-3, True, 0.65),
        record(1e-3, True, 0.55),
        record(1e-2, False, 0.99),
    ]  # a dev run with a better score must not count
    (chosen,) = choose(records, "trainer.lr")
    assert chosen["value"] == 1e-4 and chosen["heldout_mean"] == pytest.approx(0.61) and chosen["seeds"] == 2
    assert chosen["command"] == "python -m peftbench +method=lora +task=rte model=m trainer.lr=0.0001"


@pytest.mark.parametrize(
    "arguments, sentence",
    [
        (["results_dir=results"], "error: 'results_dir=results' is not a config key: the arguments are positional"),
        (["trainer.lr", "{tmp}/missing"], "error: results_dir '{tmp}/missing' is not a folder;"),
        (
            ["trainer.lrr", "{tmp}/results"],
            "error: a held-out record under {tmp}/results has no config key 'trainer.lrr'",
        ),
    ],
)
def test_choose_answers_bad_arguments_in_one_sentence(arguments, sentence, tmp_path, monkeypatch, capsys):
    from peftbench import choose
    from peftbench.records import SCHEMA_VERSION

    (tmp_path / "results").mkdir()
    record = heldout_record(1e-4, True, 0.6) | {"schema_version": SCHEMA_VERSION}
    (tmp_path / "results" / "run.json").write_text(json.dumps(record))
    monkeypatch.setattr(sys, "argv", ["choose", *(a.format(tmp=tmp_path) for a in arguments)])
    with pytest.raises(SystemExit) as exit_info:
        choose.main()
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith(sentence.format(tmp=tmp_path)) and len(message.splitlines()) == 1, message


def test_force_reruns_an_existing_configuration(tiny_run_config, tmp_path):
    """A second run of a configuration with an ok record is skipped; force=true runs it again (the multirun
    test above shows the skip through -m; force is the same config key there)."""
    from peftbench.recipe import run

    first = run(tiny_run_config("bitfit", "trainer.max_steps=2"))
    assert run(tiny_run_config("bitfit", "trainer.max_steps=2")).skipped
    for _ in range(2):
        assert not run(tiny_run_config("bitfit", "trainer.max_steps=2", "force=true")).skipped
    written = records_in(tmp_path)
    assert len(written) == 3 and first.record["path"] in map(str, written)


@pytest.mark.slow
def test_submitit_local_runs_a_job(tmp_path, toy_data_dir):
    result = tiny_multirun(tmp_path, toy_data_dir, "hydra/launcher=submitit_local", "+method=bitfit", "num_threads=1")
    assert result.returncode == 0, result.stderr[-3000:]
    (record,) = records_in(tmp_path).values()
    assert record["status"] == "ok" and list((tmp_path / "sweep").rglob("*_submitted.pkl"))
