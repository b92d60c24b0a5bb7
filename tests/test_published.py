"""The published results set: its report rebuilds byte for byte from the committed records, and its grid
runner knows which cells are answered."""

from pathlib import Path

import pytest

from peftbench import published
from peftbench.published import Cell, answers, cell_state


@pytest.mark.slow
def test_the_published_report_rebuilds_byte_identical(tmp_path):
    if not published.RECORDS.is_dir():
        pytest.skip("no published records in this checkout")
    readme = tmp_path / "README.md.copy"
    readme.write_bytes((published.ROOT / "README.md").read_bytes())
    written = published.report(out=tmp_path, store=published.committed_records(), readme=readme)
    assert readme.read_bytes() == (published.ROOT / "README.md").read_bytes(), (
        "README's results: make report-published"
    )
    for path in written:
        committed = published.STORE / path.relative_to(tmp_path)
        assert committed.is_file(), f"{committed} is not committed: run make report-published"
        assert path.read_bytes() == committed.read_bytes(), f"{committed} differs: run make report-published"
    generated = {path.relative_to(tmp_path) for path in written}
    committed = {p.relative_to(published.STORE) for p in (published.STORE / "report").rglob("*") if p.is_file()}
    assert committed <= generated, f"stale report files: {sorted(committed - generated)}"


def a_record(status="ok", error_type=None, method="lora", **config):
    task = {"name": "sst2", "max_train_samples": 5000, "heldout_fraction": None, "max_eval_samples": None}
    defaults = {"method": {"name": method, "r": 8, "lr": 5e-4}, "model": {"name": "minilm_l6"}, "task": task}
    defaults |= {"seed": 0, "budget": {"name": "none"}, "trainer": {"lr": 5e-4}}
    record = {"status": status, "run": {"method": method}, "config": defaults | config}
    if error_type:
        record["error"] = {"type": error_type, "message": "The budget cannot be reached."}
    return record


@pytest.fixture(autouse=True)
def logs_in_a_temporary_folder(tmp_path, monkeypatch):
    """The runner's logs and claims: never the real store's, which a grid may be using."""
    monkeypatch.setattr(published, "LOGS", tmp_path / "logs")


CELL = Cell("headline", ("+method=lora", "+task=sst2", "task.max_train_samples=5000", "seed=0"))


def test_a_cell_is_answered_by_a_record_with_each_of_its_values():
    assert answers(a_record(), CELL)
    assert answers(a_record(trainer={"lr": 5e-4, "new_key": 1}), CELL)  # keys the cell does not set do not matter
    assert not answers(a_record(seed=1), CELL)
    assert not answers(a_record(task={"name": "sst2", "max_train_samples": 500}), CELL)
    budget = Cell("matched_budget", (*CELL.overrides, "budget=params_0.3m"))
    assert not answers(a_record(), budget) and answers(a_record(budget={"name": "params_0.3m"}), budget)


def test_ok_and_refused_cells_are_done_failed_and_interrupted_ones_run_again():
    assert cell_state(CELL, [a_record()]) == "ok"
    assert cell_state(CELL, [a_record(status="failed", error_type="BudgetError")]) == "refused"
    assert cell_state(CELL, [a_record(status="failed", error_type="RuntimeError")]) is None
    assert cell_state(CELL, [a_record(status="interrupted")]) is None
    assert cell_state(CELL, []) is None


def test_the_grid_covers_every_method_and_the_survey_parts():
    methods = {path.stem for path in (Path(published.ROOT) / "conf" / "method").glob("*.yaml")}
    # LLaMA-Adapter: LLaMA, Mistral and GPT-2 only; CPT: GPT-2 and LLaMA language models only
    assert set(published.unserved()) == {"adaption_prompt", "cpt"}
    assert all("cannot serve model type 'bert'" in reason for reason in published.unserved().values())
    methods -= {"adaption_prompt", "cpt"}  # the CLI refuses them on MiniLM before any work: no cells
    headline = published.headline()
    assert {c.overrides[0].removeprefix("+method=") for c in headline} == methods
    assert len(headline) == 3 * len(methods)
    for part, make in published.PARTS.items():
        assert len({c.name for c in make()}) == len(make()), f"{part} lists a cell twice"
    rte = published.rte()
    assert {c.overrides[0].removeprefix("+method=") for c in rte} == methods and len(rte) == len(methods)
    shared = {c.name for c in rte} & {c.name for c in published.survey_glue()}  # full_ft ... lora, RTE, seed 0
    grid = published.grid(list(published.PARTS))
    assert shared and len({c.name for c in grid}) == len(grid)  # a cell two parts share runs once
    assert all(next(c for c in grid if c.name == name).part == "rte" for name in shared)
    seeds = [published.seed_of(c) for c in grid]
    assert seeds == sorted(seeds)  # seed 0 of every part before any seed 1
    ordered = published.grid(["headline", "rte"])
    assert [c.part for c in ordered if published.seed_of(c) == 0] == ["headline"] * len(methods) + ["rte"] * len(
        methods
    )
    survey = published.survey_glue()
    assert sum("+method=lora" in c.overrides for c in survey) == 4 * 3  # 4 tasks x 3 seeds
    assert sum("+method=bitfit" in c.overrides for c in survey) == 4  # seed 0 only


def test_the_matched_budget_runs_the_methods_with_a_size_knob_and_lists_the_one_size_of_the_rest():
    methods = {o.removeprefix("+method=") for c in published.matched_budget() for o in c.overrides if "+method" in o}
    assert {"lora", "adalora", "adapter_houlsby", "prefix_tuning"} <= methods  # prefix_tuning: refused, too big
    assert not {"bitfit", "full_ft", "ia3", "adamss", "frod"} & methods
    assert all(
        "budget=params_0.3m" in c.overrides and published.seed_of(c) in (0, 1, 2) for c in published.matched_budget()
    )

    def sized(method, trainable, **config):
        return a_record(method=method, **config) | {"params": {"trainable": trainable}}

    store = [
        sized("bitfit", 26_882),
        sized("bitfit", 26_882, seed=1),
        sized("full_ft", 22_713_986),
        sized("lora", 295_682),  # it has a knob: part 3 runs it
        sized("ia3", 14_594, budget={"name": "params_0.3m"}),  # not part 1's run
    ]
    assert published.fixed_size_lines(store) == [
        "- `bitfit`: 26,882 trainable parameters, under the budget: part 1's runs are its result",
        "- `full_ft`: 22,713,986 trainable parameters, above the budget",
    ]


def test_the_queue_hands_out_each_unanswered_cell_once(monkeypatch):
    monkeypatch.setattr(published, "read_store", lambda: [a_record()])  # answers CELL: lora, seed 0
    queue = published.Queue(["headline"])
    unanswered = len(queue.left([a_record()]))
    first, second = queue.take(), queue.take()
    assert first.name != second.name and CELL.name not in (first.name, second.name)  # the first is running
    assert len(queue.left([a_record()])) == unanswered  # running cells are not finished
    queue.done(first)  # it failed, say: this runner does not try it again
    assert len(queue.left([a_record()])) == unanswered - 1  # counted when it finished: the second is left
    assert first.name not in {cell.name for cell in queue.remaining([])}
    assert CELL.name in {cell.name for cell in queue.remaining([])}  # unanswered in an empty store


def test_with_a_time_limit_the_queue_hands_out_only_the_cells_expected_to_end_within_it(monkeypatch):
    def timed(seconds, **config):
        return a_record(**config) | {"time": {"wall_seconds": seconds}}

    # SST-2 at 5,000 examples typically takes 300 s here (the median: one slow run does not move it); RTE 900 s
    store = [timed(290), timed(300, seed=1), timed(5000, seed=2), timed(900, task={"name": "rte"})]
    monkeypatch.setattr(published, "read_store", lambda: store)
    now = published.time.time()
    sst2 = Cell("headline", ("+method=bitfit", *published.HEADLINE, "seed=0"))
    rte = Cell("rte", ("+method=bitfit", "+task=rte", "seed=0"))
    assert published.typical_seconds(store)(sst2) == 300 and published.typical_seconds(store)(rte) == 900
    assert published.Queue(["headline"], deadline=now + 310).fits(sst2, store)
    assert not published.Queue(["headline"], deadline=now + 290).fits(sst2, store)
    assert not published.Queue(["rte"], deadline=now + 600).fits(rte, store)
    assert published.Queue(["rte"], deadline=None).fits(rte, store)
    assert published.Queue(["headline"], deadline=now + 200).take() is None  # nothing fits: the runner stops
    assert published.Queue(["headline"], deadline=now + 400).take() is not None


def test_a_cell_expects_the_time_its_own_setting_took_at_another_seed():
    def timed(seconds, method, **config):
        return a_record(method=method, **config) | {"time": {"wall_seconds": seconds}}

    # VeRA at 0.3M trainable parameters takes rank 24,552: ten times the time of the budget's other runs
    budget = {"name": "params_0.3m"}
    store = [
        timed(300, "lora", budget=budget),
        timed(320, "bitfit", budget=budget),
        timed(4000, "vera", budget=budget),
    ]
    expected = published.typical_seconds(store)
    vera, ia3 = (
        Cell("matched_budget", (f"+method={m}", *published.HEADLINE, "budget=params_0.3m", "seed=1"))
        for m in ("vera", "ia3")
    )
    assert expected(vera) == 4000  # its seed 0
    assert expected(ia3) == 320  # no run of its own: the median of its shape
    assert expected(Cell("headline", ("+method=vera", *published.HEADLINE, "seed=1"))) == 320  # another budget


@pytest.mark.parametrize("minutes", ["0", "-5", "soon"])
def test_the_grid_refuses_a_time_limit_that_is_not_a_positive_number_of_minutes(minutes, capsys):
    with pytest.raises(SystemExit) as stop:
        published.main(["run", f"minutes={minutes}"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: minutes={minutes!r} is not valid: it must be a positive number of minutes."
    )


def test_a_cell_a_live_process_runs_is_left_to_it_and_a_killed_ones_runs_again(monkeypatch):
    running = a_record(status="running")  # a killed run's record reads `interrupted` (records.effective_status)
    assert cell_state(CELL, [running]) == "running"
    monkeypatch.setattr(published, "read_store", lambda: [running])
    queue = published.Queue(["headline"])
    taken = [queue.take() for _ in range(3)]
    assert CELL.name not in {cell.name for cell in taken}  # another runner has it: a restarted runner waits
    assert CELL.name in {cell.name for cell in queue.left([running])}  # and counts it as not finished
    monkeypatch.setattr(published, "read_store", lambda: [a_record(status="interrupted")])
    queue = published.Queue(["headline"])
    assert CELL.name in {cell.name for cell in iter(queue.take, None)}


def test_a_cell_another_live_runner_has_claimed_is_left_to_it_and_a_killed_runners_claim_is_taken_over(
    monkeypatch,
):
    import os
    import socket
    import subprocess

    monkeypatch.setattr(published, "read_store", lambda: [])
    first = published.Queue(["headline"]).take()
    claim = published.cell_file(first, ".claim")
    assert claim.read_text() == f"{socket.gethostname()} {os.getpid()}"
    assert published.Queue(["headline"]).take().name != first.name  # a second runner: the next cell
    gone = subprocess.Popen(["true"])
    gone.wait()
    for owner, taken in ((f"{socket.gethostname()} {os.getppid()}", False), ("other-host 1", False), ("", False)):
        claim.write_text(owner)
        assert (published.Queue(["headline"]).take().name == first.name) is taken, owner
    claim.write_text(f"{socket.gethostname()} {gone.pid}")  # its runner was killed
    queue = published.Queue(["headline"])
    assert queue.take().name == first.name
    queue.done(first)
    assert not claim.exists()


def test_a_section_says_once_what_its_runs_recorded_of_their_data():
    note = "offline: the official train set is not available, so it trains on the official dev set"
    noted = a_record() | {"data": {"note": note}}
    failed = a_record(status="failed") | {"data": {"note": "a note of a run that did not finish"}}
    assert published.data_note_lines([noted, noted, a_record(), failed]) == [f'Data: the runs record "{note}".', ""]
    assert published.data_note_lines([a_record(), failed]) == []


def timed(record, seconds):
    return record | {"time": {"wall_seconds": seconds}}


@pytest.mark.parametrize("elsewhere_by", ["its running record", "its claim"])
def test_a_runner_that_ends_says_which_cells_another_runs_and_which_its_limit_left(elsewhere_by, monkeypatch, capsys):
    import os
    import socket

    long_one = Cell("headline", (*CELL.overrides[:-1], "seed=2"))
    monkeypatch.setattr(published, "grid", lambda parts: [CELL, long_one])
    store = [timed(a_record(seed=1), 3600)]  # its other seeds took an hour: it does not fit a 1-minute limit
    if elsewhere_by == "its running record":
        store.append(a_record(status="running"))
    else:  # claimed by a live runner whose run has not written its record yet
        published.LOGS.mkdir(parents=True)
        published.cell_file(CELL, ".claim").write_text(f"{socket.gethostname()} {os.getppid()}")
    monkeypatch.setattr(published, "read_store", lambda: store)
    monkeypatch.setattr(published, "run_cell", lambda cell, threads: pytest.fail(f"{cell.name} was run"))

    published.run(["headline"], jobs=1, minutes=1)
    said = capsys.readouterr().out.splitlines()[1:]
    assert said == [
        "1 cell(s) still running in another process, which finishes them",
        "stopped at the 1-minute limit: 1 cell(s) left for the next run",
    ]

    store.append(timed(a_record(seed=2), 3600))  # the long one answered: only the other runner's is left
    published.run(["headline"], jobs=1, minutes=1)
    assert capsys.readouterr().out.splitlines()[1:] == [
        "1 cell(s) still running in another process, which finishes them"
    ]


def test_the_time_left_is_each_cells_typical_run_not_the_average_since_the_start():
    store = [timed(a_record(seed=s), wall) for s, wall in ((0, 100.0), (1, 300.0), (2, 5000.0))]
    headline = [Cell("headline", (*CELL.overrides[:3], f"seed={s}")) for s in (3, 4)]
    assert published.minutes_left(headline, store, jobs=2) == 2 * 300 / 2 / 60  # the median, not the mean
    few = Cell("low_resource", ("+method=lora", "+task=sst2", "task.max_train_samples=100", "seed=0"))
    store.append(timed(a_record(task={"name": "sst2", "max_train_samples": 100}), 20.0))
    assert published.minutes_left([few], store, jobs=1) == 20 / 60  # its own shape's runs
    rte = Cell("rte", ("+method=lora", "+task=rte", "seed=0"))
    assert published.minutes_left([rte], store, jobs=1) == 200 / 60  # no run of its shape: the median of all
    assert published.minutes_left([rte], [], jobs=1) == 0.0


def test_a_cell_means_the_defaults_of_what_it_does_not_set():
    task = {"name": "sst2", "max_train_samples": 5000, "max_eval_samples": None}
    assert not answers(a_record(budget={"name": "params_0.3m"}), CELL)  # a matched-budget run is no headline run
    assert not answers(a_record(trainer={"lr": 1e-3}), CELL)  # nor a run at another learning rate
    assert not answers(a_record(task={**task, "heldout_fraction": 0.1}), CELL)  # nor a trial on held-out data
    trial = Cell("searched", (*CELL.overrides, "task.heldout_fraction=0.1", "trainer.lr=1e-5"))
    assert answers(a_record(task={**task, "heldout_fraction": 0.1}, trainer={"lr": 1e-5}), trial)  # 1e-5: a float


def with_prediction(record, predictions, accuracy=0.5):
    return record | {
        "predictions": {"predictions": predictions, "labels": [0, 1]},
        "metrics": {"main_metric": "accuracy", "final": {"accuracy": accuracy}, "loss_curve": [0.7, 0.3]},
    }


def test_methods_whose_defaults_collapse_get_the_same_five_trials_then_the_chosen_rate(monkeypatch):
    collapsed = with_prediction(a_record(method="bitfit"), [1, 1])
    store = [collapsed, with_prediction(a_record(), [0, 1])]
    monkeypatch.setattr(published, "read_store", lambda: store)
    trials = published.searched()
    assert {c.overrides[0] for c in trials} == {"+method=bitfit"} and len(trials) == 5  # lora learned: no trials
    task = {"name": "sst2", "max_train_samples": 5000, "max_eval_samples": None, "heldout_fraction": 0.1}
    for rate, accuracy in zip(published.LEARNING_RATES, (0.5, 0.6, 0.8, 0.7, 0.5)):
        trial = a_record(method="bitfit", task=task, trainer={"lr": float(rate)})
        store.append(with_prediction(trial, [0, 1], accuracy))
    finals = [c for c in published.searched() if "task.heldout_fraction=0.1" not in c.overrides]
    assert [c.name for c in finals] == [
        f"+method=bitfit +task=sst2 task.max_train_samples=5000 trainer.lr=2e-4 seed={s}" for s in (0, 1, 2)
    ]


def test_the_search_table_puts_the_trials_held_out_scores_between_the_default_and_the_chosen_result():
    store = [with_prediction(a_record(method="bitfit", seed=s), [1, 1], 0.51) for s in (0, 1)]  # collapsed
    task = {"name": "sst2", "max_train_samples": 5000, "max_eval_samples": None, "heldout_fraction": 0.1}
    for rate, accuracy in zip(published.LEARNING_RATES, (0.5, 0.6, 0.8, 0.7, 0.5)):
        trial = with_prediction(a_record(method="bitfit", task=task, trainer={"lr": float(rate)}), [0, 1], accuracy)
        store.append(trial | {"data": {"eval_examples": 6735}})
    store += [
        with_prediction(a_record(method="bitfit", seed=s, trainer={"lr": 2e-4}), [0, 1], a)
        for s, a in ((0, 0.8), (1, 0.9))
    ]
    lines = published.search_table(store)
    assert lines[-1] == (
        "| bitfit | 6,735 | 0.510 ± 0.000 (n=2, 2 collapsed) | 0.500 (n=1) | 0.600 (n=1) | **0.800 (n=1)** "
        "| 0.700 (n=1) | 0.500 (n=1) | 2e-4 | 0.850 ± 0.071 (n=2) |"
    )
    assert len(lines) == 5  # caption, blank line, header, rule and one row: the one method that collapsed


def test_a_search_whose_every_trial_collapsed_says_no_rate_learned():
    store = [with_prediction(a_record(method="bitfit", seed=s), [1, 1], 0.51) for s in (0, 1)]
    task = {"name": "sst2", "max_train_samples": 5000, "max_eval_samples": None, "heldout_fraction": 0.1}
    for rate, accuracy in zip(published.LEARNING_RATES, (0.52, 0.5, 0.49, 0.5, 0.5)):
        trial = a_record(method="bitfit", task=task, trainer={"lr": float(rate)})
        store.append(with_prediction(trial, [1, 1], accuracy) | {"data": {"eval_examples": 6735}})  # one class
    row = published.search_table(store)[-1]
    assert "| **0.520 (n=1, 1 collapsed)** |" in row
    assert row.endswith("| 1e-5 (no rate learned: every trial collapsed) | – |")
    store[-1] = with_prediction(store[-1], [0, 1], 0.5)  # one trial that learned: the best is a real choice
    assert published.search_table(store)[-1].endswith("| 1e-5 | – |")


def test_part_2_searches_each_task_a_default_collapsed_on_at_the_seeds_part_2_runs(monkeypatch):
    def on(name, method, seed=0, held_out=None, **config):
        task = {"name": name, "max_train_samples": None, "heldout_fraction": held_out}
        return a_record(method=method, seed=seed, task=task, **config) | {"data": {"eval_examples": 855}}

    store = [with_prediction(on("cola", "bitfit"), [1, 1], 0.0)]  # one class for every sentence
    store += [with_prediction(on("cola", "lora", seed=s), [0, 1], 0.4) for s in (0, 1, 2)]  # lora learned CoLA
    store += [with_prediction(on("rte", "bitfit"), [0, 1], 0.6)]
    monkeypatch.setattr(published, "read_store", lambda: store)
    assert {c.name for c in published.searched_glue()} == {
        f"+method=bitfit +task=cola task.heldout_fraction=0.1 trainer.lr={rate} seed=0"
        for rate in published.LEARNING_RATES
    }
    for rate, score in zip(published.LEARNING_RATES, (0.1, 0.3, 0.2, 0.0, 0.0)):
        store.append(with_prediction(on("cola", "bitfit", held_out=0.1, trainer={"lr": float(rate)}), [0, 1], score))
    finals = [c.name for c in published.searched_glue() if "task.heldout_fraction=0.1" not in c.overrides]
    assert finals == ["+method=bitfit +task=cola trainer.lr=5e-5 seed=0"]  # part 2 runs bitfit at seed 0 only
    row = published.search_table(store, "searched_glue")[-1]
    assert row.startswith("| bitfit, cola | 855 | 0.000 (n=1, 1 collapsed) | 0.100 (n=1) | **0.300 (n=1)** |")
    assert row.endswith("| 5e-5 | – |")  # the chosen rate has no run on dev yet


def test_a_low_resource_search_keeps_its_size_and_its_steps():
    settings = published.settings_of("low_resource")
    prefix = next(s for s in settings if "+method=prefix_tuning" in s and "task.max_train_samples=100" in s)
    trial = published.trial("searched_low_resource", prefix, "1e-3")
    assert {"task.max_train_samples=100", "trainer.max_steps=189", "task.heldout_fraction=0.1"} <= set(trial.overrides)
    assert settings[prefix] == [0, 1, 2]
    assert (
        published.setting_label(prefix, "low_resource")
        == "prefix_tuning, num_virtual_tokens=10, max_train_samples=100"
    )


def test_the_cost_benchmark_replaces_the_step_time_and_overheads_of_the_runs_it_measured():
    lora = a_record() | {"throughput": {"median_step_seconds": 0.5}, "params": {"trainable": 74498}}
    lora["latency"] = {"method": {"overhead_pct": 9.0}, "merged": {"overhead_pct": 7.0}}
    bitfit = a_record(method="bitfit") | {"throughput": {"median_step_seconds": 0.4}, "latency": {"method": {}}}
    other_task = a_record(task={"name": "rte"}) | {"throughput": {"median_step_seconds": 0.6}}
    other_size = a_record(budget={"name": "params_0.3m"}) | {"params": {"trainable": 301058}}  # lora at its rank
    measured = {
        "step_seconds": {"median": 0.2},
        "latency_ms": {"median": 30.0},
        "overhead_pct": 1.5,
        "merged_latency_ms": {"median": 29.0},
        "merged_overhead_pct": -0.5,
        "trainable": 74498,
    }
    costs = {"settings": {"model": "minilm_l6", "task": "sst2", "batch_size": 16}, "methods": {"lora": measured}}
    replaced, kept, rte, matched = published.with_costs([lora, bitfit, other_task, other_size], costs)
    assert replaced["throughput"]["median_step_seconds"] == 0.2 and replaced["costs_source"] == "costs.json"
    assert replaced["throughput"]["samples_per_second"] == 80.0  # the plots' throughput: 16 samples per 0.2 s
    assert replaced["latency"]["method"] == {"overhead_pct": 1.5, "median_ms": 30.0}
    assert replaced["latency"]["merged"] == {"overhead_pct": -0.5, "median_ms": 29.0}
    assert lora["throughput"]["median_step_seconds"] == 0.5  # the record itself is not changed
    assert kept is bitfit and rte is other_task  # a method, or a task, the benchmark did not measure
    assert matched is other_size  # nor the size: a matched-budget run keeps its own step time
    assert published.with_costs([lora], None) == [lora]


def test_the_published_set_stays_small_enough_to_commit():
    committed = published.ROOT / "results" / "published"
    if not committed.is_dir():
        pytest.skip("no published results in this checkout")
    # the runner's logs beside the records are git-ignored: not part of the set
    files = [path for path in committed.rglob("*") if path.is_file() and published.LOGS not in path.parents]
    size = sum(path.stat().st_size for path in files)
    assert size < 30 * 2**20, f"results/published holds {size / 2**20:.1f} MiB; the issue allows 30 MB"


@pytest.mark.parametrize("jobs", ["0", "two", "-1"])
def test_the_grid_refuses_a_job_count_that_is_not_a_whole_number_of_at_least_one(jobs, capsys):
    with pytest.raises(SystemExit) as exit_info:
        published.main(["run", f"jobs={jobs}"])
    assert exit_info.value.code == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: jobs='{jobs}' is not valid: it must be a whole number of at least 1."
    )


def test_the_parts_said_to_run_every_method_are_the_ones_whose_cells_do():
    served = set(published.method_names()) - set(published.unserved())
    for part, cells in published.PARTS.items():
        methods = {o.removeprefix("+method=") for cell in cells() for o in cell.overrides if o.startswith("+method=")}
        # only these sections list the methods the grid leaves out (the others never meant to run them)
        assert (methods == served) == (part in published.EVERY_METHOD), part


def test_the_sections_that_borrow_part_1s_full_fine_tuning_run_on_its_data_and_have_none_of_their_own():
    for part in published.BORROWED_BASE:
        cells = published.PARTS[part]()
        assert cells and all(set(published.HEADLINE) <= set(cell.overrides) for cell in cells), part
        own = [
            c for c in cells if f"+method={published.BASE}" in c.overrides and "budget=params_0.3m" not in c.overrides
        ]
        assert not own, part  # a budget full_ft is refused: it has no size to fit
    assert published.BASE in published.served_methods()


def test_the_records_to_commit_are_the_finished_ones_git_does_not_track_yet(tmp_path, monkeypatch):
    import json
    import subprocess

    records = tmp_path / "results" / "published" / "records"
    monkeypatch.setattr(published, "ROOT", tmp_path)
    monkeypatch.setattr(published, "RECORDS", records)
    states = {
        "committed": a_record(),
        "ok": a_record(seed=1),
        "refused": a_record(status="failed", error_type="BudgetError"),
        "crashed": a_record(status="failed", error_type="RuntimeError"),
        "running": a_record(status="running"),
        "interrupted": a_record(status="interrupted"),
    }
    records.mkdir(parents=True)
    for name, record in states.items():
        (records / f"{name}.json").write_text(json.dumps(record | {"schema_version": 1}))
    assert published.finished_uncommitted() == []  # no git checkout: nothing to commit
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "results/published/records/committed.json"], cwd=tmp_path, check=True)
    assert published.finished_uncommitted() == [records / "ok.json", records / "refused.json"]


def test_every_low_resource_cell_fills_its_row_of_unipelt_table_1():
    """Part 4 runs UniPELT Table 1's methods: each cell's composed config is one its spec row reads."""
    from omegaconf import OmegaConf

    from peftbench.report.aggregate import matching
    from peftbench.report.specs.unipelt import UNIPELT_TABLE1

    from conftest import compose_config

    filled = set()
    for cell in (c for c in published.low_resource() if published.seed_of(c) == 0):
        config = OmegaConf.to_container(compose_config(list(cell.overrides)), resolve=True)
        record = {"status": "ok", "run": {"method": config["method"]["name"], "task": "sst2", "model": "minilm_l6"}}
        record["config"] = config
        rows = [
            row
            for row in UNIPELT_TABLE1.rows
            if row.method and matching([record], row.method, "sst2", "minilm_l6", row.where)
        ]
        assert len(rows) == 1, f"{cell.name} fills {[row.label for row in rows]}"
        filled.add(rows[0].label)
    assert len(filled) == len(published.LOW_RESOURCE_METHODS) * 3  # 3 sizes


def test_a_table_or_plot_the_records_no_longer_make_leaves_the_report(tmp_path):
    stale = tmp_path / "report" / "low_resource" / "unipelt_table1.md"
    stale.parent.mkdir(parents=True)
    stale.write_text("a table of runs since dropped from the set\n")
    written = published.report(out=tmp_path, store=[], readme=None, costs_path=None, counts_path=None)
    assert not stale.exists() and all(path.exists() for path in written)


def test_a_search_not_yet_run_shows_its_settings_beside_their_collapsed_defaults(tmp_path, monkeypatch):
    from peftbench.records import load_record

    # part 2's one BitFit run on CoLA, committed: it answers one class for every sentence (its folder holds
    # the search's runs too, once they are committed)
    default = Cell("survey_glue", ("+method=bitfit", "+task=cola", "seed=0"))
    found = [load_record(p) for p in (published.RECORDS / "cola" / "minilm_l6" / "bitfit").glob("*.json")]
    (record,) = [r for r in found if r.get("status") == "ok" and answers(r, default)]
    store = [record]
    monkeypatch.setattr(published, "read_store", lambda: store)
    published.report(out=tmp_path, store=store, readme=None, costs_path=None, counts_path=None)
    section = (tmp_path / "README.md").read_text().split("## 2b.")[1].split("\n## ")[0]
    assert "### The learning-rate search (to run)" in section
    assert "| bitfit, cola | – | 0.000 (n=1, 1 collapsed) | – |" in section


def test_every_part_that_ranks_has_a_search_and_a_budget_search_keeps_its_budget():
    assert set(published.SEARCHES) == {"headline", "survey_glue", "matched_budget", "low_resource", "generation"}
    assert set(published.SEARCHES.values()) <= set(published.PARTS)  # each search is a part of the grid
    fourierft = next(s for s in published.settings_of("matched_budget") if "+method=fourierft" in s)
    trial = published.trial("searched_budget", fourierft, "5e-3")
    assert (
        "budget=params_0.3m" in trial.overrides and published.setting_label(fourierft, "matched_budget") == "fourierft"
    )
