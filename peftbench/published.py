"""The published results set: its grid of runs, a resumable runner for it, and its report.

    python -m peftbench.published run [jobs=2] [parts=headline,survey_glue,...] [minutes=N]   # make published-grid
    python -m peftbench.published status
    python -m peftbench.published finished      # the finished records git does not track yet: commit them
    python -m peftbench.published report                                          # make report-published
    python -m peftbench.published counts        # make published-counts: the published parameter counts again

Each cell of the grid is one `python -m peftbench` command (its overrides). A cell is done when the
store holds an `ok` record whose config has every one of the cell's values, or a record of its refusal
(a budget the method's size knob cannot reach, a model type it does not serve): so the runner can be
stopped and started again, on this machine or another, and new config keys with defaults do not make
finished cells run again. A cell a live process runs (its claim, then its `running` record) is left to it:
a runner started again while a killed one's runs finish, or a second runner on the same store, takes other
cells. With `minutes=N` it starts only the cells expected to end within N minutes (each at the median wall time
of the finished runs of its method and budget at other seeds, else of its task, model and training-set size), so a
session that ends then loses no run half done. A part's settings whose defaults collapsed (one answer for every
example, or a loss that never fell) get its search part: the same five learning-rate trials on held-out training
data, then the chosen rate at the part's seeds (`searched`, `searched_glue`, `searched_budget`, ...).
Runs side by side take one thread each; their cost columns are not the published costs (see the
report's caption)."""

import copy
import functools
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from peftbench import paper_counts

ROOT = Path(__file__).resolve().parent.parent
# The committed set; PEFTBENCH_PUBLISHED_STORE puts the store elsewhere (a grid run from a clean checkout
# writes outside it, so the records' provenance says the code was not modified)
STORE = Path(os.environ.get("PEFTBENCH_PUBLISHED_STORE") or ROOT / "results" / "published")
RECORDS = STORE / "records"
LOGS = STORE / "logs"  # one log per cell's latest attempt (git-ignored)
REPORT = STORE / "report"
COSTS = STORE / "costs.json"  # make bench-methods: every method's step time and latency under equal conditions
COUNTS = STORE / "counts.json"  # make published-counts: the published parameter counts, counted again
HEADLINE_SAMPLES = 5000  # the headline task's training set: a seeded subset of SST-2's
HEADLINE = ("+task=sst2", f"task.max_train_samples={HEADLINE_SAMPLES}")
MATCHED_BUDGET = "params_0.3m"  # part 3's budget (conf/budget)
SEEDS = (0, 1, 2)
MODEL = "minilm_l6"  # the default model: every part but generation
# Refusals before any work: the cell is answered (the record says why), running it again changes nothing.
REFUSALS = ("ConfigError", "BudgetError")
# Always the same: no tracker, the records in the published store, no checkpoints kept.
FIXED = ("tracker=none", f"results_dir={RECORDS}", "checkpoint_dir=null")


@dataclass(frozen=True)
class Cell:
    part: str
    overrides: tuple[str, ...]

    @property
    def name(self) -> str:
        return " ".join(self.overrides)


def method_names() -> list[str]:
    from peftbench import CONF_DIR

    return sorted(path.stem for path in (CONF_DIR / "method").glob("*.yaml"))


def unserved(model: str = MODEL) -> dict[str, str]:
    """Methods that cannot serve the model's type, with the sentence the CLI refuses them with before any work
    (which writes no record): the grid has no cells for them, and the report lists them."""
    return dict(refused_for(model, tuple(method_names())))


@functools.cache  # the grid asks at every pick; a method added since is a new set of names
def refused_for(model: str, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    from peftbench import CONF_DIR

    model_cfg = yaml.safe_load((CONF_DIR / "model" / f"{model}.yaml").read_text())
    refused = {}
    for name in names:
        try:
            registered(name).check_serves(model_cfg)
        except ValueError as error:
            refused[name] = str(error)
    return tuple(refused.items())


def served_methods(model: str = MODEL) -> list[str]:
    refused = unserved(model)
    return [name for name in method_names() if name not in refused]


def headline() -> list[Cell]:
    """1. Every registered method that serves the model, on SST-2 at its defaults, seeds 0-2."""
    return [Cell("headline", (f"+method={m}", *HEADLINE, f"seed={s}")) for s in SEEDS for m in served_methods()]


def rte() -> list[Cell]:
    """1c. Every method on RTE at its defaults, seed 0: the CLI's example task (`make run`), whole training set."""
    return [Cell("rte", (f"+method={m}", "+task=rte", "seed=0")) for m in served_methods()]


def survey_glue() -> list[Cell]:
    """2. LoRA Table 2 / AdaLoRA Table 1 methods on RTE, MRPC, CoLA, STS-B (full training sets)."""
    seeds = {"full_ft": SEEDS, "lora": SEEDS, "bitfit": (0,), "adapter_houlsby": (0,), "adapter_pfeiffer": (0,)}
    seeds["adalora"] = (0,)
    cells = []
    for seed in SEEDS:
        for task in ("rte", "mrpc", "cola", "stsb"):
            cells += [
                Cell("survey_glue", (f"+method={m}", f"+task={task}", f"seed={seed}"))
                for m in seeds
                if seed in seeds[m]
            ]
    return cells


@functools.cache
def registered(name: str):
    """The registry's method for conf/method/<name>.yaml."""
    from peftbench import CONF_DIR
    from peftbench.methods import get_method

    return get_method(yaml.safe_load((CONF_DIR / "method" / f"{name}.yaml").read_text())["name"])


def has_size_knob(name: str) -> bool:
    return registered(name).size_knob is not None


def matched_budget() -> list[Cell]:
    """3. budget=params_0.3m on the headline task, every method with a size knob (those whose knob cannot reach it
    are refused). A method without one would run part 1's cell again at its one size: the report lists its size."""
    return [
        Cell("matched_budget", (f"+method={m}", *HEADLINE, f"budget={MATCHED_BUDGET}", f"seed={s}"))
        for s in SEEDS
        for m in served_methods()
        if has_size_knob(m)
    ]


def fixed_size_lines(store: list[dict]) -> list[str]:
    """One line per method without a size knob: its one size (part 1's runs), under or above the budget."""
    from peftbench import CONF_DIR

    budget = yaml.safe_load((CONF_DIR / "budget" / f"{MATCHED_BUDGET}.yaml").read_text())["params"]
    sizes = {}
    for record in section_records(store, ("headline",)):
        method = record["run"]["method"]
        if record.get("status") == "ok" and not has_size_knob(method):
            sizes.setdefault(method, record["params"]["trainable"])
    return [
        f"- `{method}`: {size:,} trainable parameters, "
        + ("under the budget: part 1's runs are its result" if size <= budget else "above the budget")
        for method, size in sorted(sizes.items())
    ]


# UniPELT Table 1's methods as its spec (report/specs/unipelt.py) reads them: prefix length 10, LoRA r=8 on q,v,
# the paper's adapter (Pfeiffer's, bottleneck d / 16), UniPELT (APL) at its defaults.
LOW_RESOURCE_METHODS = (
    ("+method=full_ft",),
    ("+method=bitfit",),
    ("+method=prefix_tuning", "method.num_virtual_tokens=10"),
    ("+method=lora",),
    ("+method=adapter_pfeiffer", "method.reduction_factor=16"),
    ("+method=unipelt",),
)


LOW_RESOURCE_SIZES = (100, 500, 1000)
# Every K trains as many optimizer steps as K=1000 in 3 epochs at batch 16 (63 x 3): at 3 epochs K=100 had 21
# steps, and every method, full fine-tuning too, still answered one class for all of dev. The dev set is
# evaluated once, after the last step (K=100 makes 30 passes over its examples).
LOW_RESOURCE_STEPS = 189
LOW_RESOURCE_TRAINING = (f"trainer.max_steps={LOW_RESOURCE_STEPS}", "trainer.eval_every_epoch=false")


def low_resource() -> list[Cell]:
    """4. K = 100, 500, 1000 training examples of SST-2 (a seeded subset per seed), 189 steps each, seeds 0-2."""
    return [
        Cell(
            "low_resource", (*method, "+task=sst2", f"task.max_train_samples={k}", *LOW_RESOURCE_TRAINING, f"seed={s}")
        )
        for s in SEEDS
        for k in LOW_RESOURCE_SIZES
        for method in LOW_RESOURCE_METHODS
    ]


def generation() -> list[Cell]:
    """5. SmolLM2-135M on E2E: 1,000 training pairs, the first 500 test pairs, seed 0."""
    return [
        Cell(
            "generation",
            (
                f"+method={m}",
                "+task=e2e_nlg",
                "model=smollm2_135m",
                "task.max_train_samples=1000",
                "task.max_eval_samples=500",
                "trainer.eval_every_epoch=false",  # 500 generations take minutes: the final epoch's only, as reported
                "seed=0",
            ),
        )
        for m in ("lora", "prefix_tuning", "prompt_tuning", "adapter_houlsby", "ia3")
    ]


LEARNING_RATES = ("1e-5", "5e-5", "2e-4", "1e-3", "5e-3")  # sweeps/lr_search.yaml's: the same for every method
HELD_OUT = "task.heldout_fraction=0.1"  # the trials are scored on 10% of the training data, never on dev


# The searches: a part whose defaults collapsed -> the part that searches them. Part 1c (every method on RTE) is not
# searched: MiniLM-L6 sits near chance on RTE for every method, so its runs rank nothing (part 2's RTE column is).
SEARCHES = {
    "headline": "searched",
    "survey_glue": "searched_glue",
    "matched_budget": "searched_budget",
    "low_resource": "searched_low_resource",
    "generation": "searched_generation",
}
SEARCHED_OF = {search: part for part, search in SEARCHES.items()}


def settings_of(part: str) -> dict[tuple[str, ...], list[int]]:
    """The part's settings (a cell's overrides but its seed), in grid order, each with the seeds the part runs."""
    settings = {}
    for cell in PARTS[part]():
        settings.setdefault(tuple(o for o in cell.overrides if not o.startswith("seed=")), []).append(seed_of(cell))
    return settings


def collapsed_settings(store: list[dict], part: str) -> list[tuple[str, ...]]:
    """The part's settings with a run that collapsed at their defaults (one answer for all, or a stuck loss)."""
    from peftbench.report.aggregate import collapse_reason

    collapsed = [r for r in store if r.get("status") == "ok" and collapse_reason(r)]
    return [
        setting
        for setting, seeds in settings_of(part).items()
        if any(answers(r, Cell(part, (*setting, f"seed={s}"))) for r in collapsed for s in seeds)
    ]


def trial(search: str, setting: tuple[str, ...], rate: str) -> Cell:
    """One learning-rate trial of a setting: seed 0, scored on held-out training data."""
    return Cell(search, (*setting, HELD_OUT, f"trainer.lr={rate}", "seed=0"))


def chosen_rate(store: list[dict], search: str, setting: tuple[str, ...]) -> str | None:
    """The trial learning rate with the best held-out main metric, once every trial has a record."""
    scores = {}
    for rate in LEARNING_RATES:
        found = [r for r in store if r.get("status") == "ok" and answers(r, trial(search, setting, rate))]
        if not found:
            return None
        metric = found[0]["metrics"]["main_metric"]
        scores[rate] = found[0]["metrics"]["final"][metric]
    return max(LEARNING_RATES, key=lambda rate: scores[rate])  # the first of equal scores: the smallest rate


def search_cells(search: str) -> list[Cell]:
    """The settings of SEARCHED_OF[search] whose defaults collapsed: the same five learning-rate trials as every
    method would get (seed 0, scored on held-out training data), then the chosen rate on dev at the seeds the
    part runs. Published beside the default result, labelled by its learning rate."""
    part, store, cells = SEARCHED_OF[search], read_store(), []
    seeds = settings_of(part)
    for setting in collapsed_settings(store, part):
        cells += [trial(search, setting, rate) for rate in LEARNING_RATES]
        if rate := chosen_rate(store, search, setting):
            cells += [Cell(search, (*setting, f"trainer.lr={rate}", f"seed={s}")) for s in seeds[setting]]
    return cells


def searched() -> list[Cell]:
    """1b. Part 1's methods whose defaults collapsed on SST-2."""
    return search_cells("searched")


def searched_glue() -> list[Cell]:
    """2b. Part 2's methods and tasks whose defaults collapsed."""
    return search_cells("searched_glue")


def searched_budget() -> list[Cell]:
    """3b. Part 3's methods whose defaults collapsed at the matched budget."""
    return search_cells("searched_budget")


def searched_low_resource() -> list[Cell]:
    """4b. Part 4's methods and sizes K whose defaults collapsed."""
    return search_cells("searched_low_resource")


def searched_generation() -> list[Cell]:
    """5b. Part 5's methods whose defaults collapsed on E2E."""
    return search_cells("searched_generation")


# A section's tasks whose runs are a seeded subset of the training set, read by its full-data table rows (the
# caption says so): the survey tables' SST-2 columns are part 1's runs.
SUBSETS = {"survey_glue": {"sst2": HEADLINE_SAMPLES}}
# Sections on part 1's data whose own parts run no full fine-tuning (the searched rates; a budget full_ft
# cannot be fitted to): part 1's full_ft runs are the base of their columns relative to full fine-tuning.
BASE = "full_ft"
BORROWED_BASE = {"searched", "matched_budget"}
BASE_NOTE = (
    f"The `{BASE}` row is part 1's (its defaults, on the same {HEADLINE_SAMPLES:,} SST-2 examples): the base of "
    "the columns relative to full fine-tuning, as this part runs none."
)
EVERY_METHOD = {"headline", "rte"}  # the parts whose cells are every method the model serves
PARTS = {
    "headline": headline,
    "searched": searched,
    "rte": rte,
    "survey_glue": survey_glue,
    "searched_glue": searched_glue,
    "matched_budget": matched_budget,
    "searched_budget": searched_budget,
    "low_resource": low_resource,
    "searched_low_resource": searched_low_resource,
    "generation": generation,
    "searched_generation": searched_generation,
}


def seed_of(cell: Cell) -> int:
    return next(int(o.removeprefix("seed=")) for o in cell.overrides if o.startswith("seed="))


def grid(parts: list[str]) -> list[Cell]:
    """The parts' cells, each run once (a cell two parts share, LoRA on RTE at seed 0, in the first part that
    lists it), seed 0 of every part first: each table has a number in every cell before any gets a second."""
    cells = {}
    for cell in (cell for part in parts for cell in PARTS[part]()):
        cells.setdefault(cell.name, cell)
    return sorted(cells.values(), key=seed_of)  # stable: the parts' order within a seed


def config_value(record: dict, key: str):
    """The record's value for an override's key: `method` and `task` are the chosen config's name."""
    config = record.get("config") or {}
    if key in ("method", "task", "model", "budget"):
        return (config.get(key) or {}).get("name")
    for part in key.split("."):
        if not isinstance(config, dict) or part not in config:
            return None
        config = config[part]
    return config


# What a cell that does not set these keys means by them: a record with another value is of another cell
# (a matched-budget run is no headline run, nor is a learning-rate trial or a run at a searched rate).
UNSET_MEANS = {
    "budget": "none",
    "model": "minilm_l6",
    "task.heldout_fraction": None,
    "task.max_eval_samples": None,
    "trainer.max_steps": None,  # a run of so many steps is no run of the epochs
}


@functools.cache  # the grid's cells are matched against every record: each override is parsed once
def override_value(text: str):
    """An override's value as Hydra reads it (1e-5 is a float, which YAML 1.1 would leave a string)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def cell_settings(cell: Cell) -> dict:
    """The values the cell's overrides set, by config key (`+method=lora` -> {"method": "lora"})."""
    settings = {}
    for override in cell.overrides:
        key, _, value = override.lstrip("+~").partition("=")
        settings[key] = override_value(value)
    return settings


def answers(record: dict, cell: Cell) -> bool:
    """The record is of this cell: its config has every value the cell's overrides set, and the defaults
    for the keys of UNSET_MEANS and the method's own learning rate where the cell does not set them."""
    expected = {**UNSET_MEANS, "trainer.lr": config_value(record, "method.lr"), **cell_settings(cell)}
    return all(config_value(record, key) == value for key, value in expected.items())


def cell_state(cell: Cell, store: list[dict]) -> str | None:
    """ok / refused when the store answers the cell (nothing to run); running while a live process runs it
    (this runner's, or another's on the same store: a runner stopped and started again leaves it be); else None."""
    found = [record for record in store if answers(record, cell)]
    if any(record.get("status") == "ok" for record in found):
        return "ok"
    if any((record.get("error") or {}).get("type") in REFUSALS for record in found):
        return "refused"
    if any(record.get("status") == "running" for record in found):  # a killed run's record reads `interrupted`
        return "running"
    return None


def read_store() -> list[dict]:
    from peftbench.records import read_records

    return read_records(str(RECORDS)) if RECORDS.is_dir() else []


def cell_file(cell: Cell, suffix: str) -> Path:
    """The cell's log (.log) or claim (.claim) in LOGS."""
    return LOGS / (cell.name.replace(" ", "_").replace("+", "").replace("=", "-") + suffix)


def claim(cell: Cell) -> bool:
    """Claims the cell for this runner: a file made only if none exists, naming the host and process. False while
    a live process on this host, or any on another host, holds it; the claim of a runner that was killed is
    taken over. Its run's `running` record appears only once the run has started: the claim covers the gap."""
    LOGS.mkdir(parents=True, exist_ok=True)
    path = cell_file(cell, ".claim")
    for _ in range(2):
        try:
            with open(path, "x") as file:
                file.write(f"{socket.gethostname()} {os.getpid()}")
            return True
        except FileExistsError:
            if held(cell):
                return False
            path.unlink(missing_ok=True)
    return False


def held(cell: Cell) -> bool:
    """A live process holds the cell's claim: one on this host, any on another host (it cannot be checked)."""
    from peftbench.records import process_alive

    try:
        owner, _, pid = cell_file(cell, ".claim").read_text().partition(" ")  # "" while its maker writes it: held
    except FileNotFoundError:
        return False
    return owner != socket.gethostname() or not pid.isdigit() or process_alive(int(pid))


def run_cell(cell: Cell, threads: int) -> tuple[int, float]:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = cell_file(cell, ".log")
    start = time.perf_counter()
    with open(log, "w") as out:
        command = [sys.executable, "-m", "peftbench", *cell.overrides, *FIXED, f"num_threads={threads}"]
        code = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT).returncode
    return code, time.perf_counter() - start


class Queue:
    """The grid's unanswered cells, picked one at a time: the store and the grid are read again at every
    pick, so cells other runs answered are skipped and methods added since the start are run too. A cell
    that failed (not refused) is not tried again by the same runner."""

    def __init__(self, parts: list[str], deadline: float | None = None):
        self.parts, self.lock, self.running, self.tried = parts, threading.Lock(), set(), set()
        self.deadline = deadline  # time.time() by which every cell it hands out is expected to end; None: no limit

    def fits(self, cell: Cell, store: list[dict]) -> bool:
        return self.deadline is None or time.time() + typical_seconds(store)(cell) <= self.deadline

    def remaining(self, store: list[dict]) -> list[Cell]:
        """Cells not finished: unanswered, or running here or in another process."""
        return [c for c in grid(self.parts) if c.name not in self.tried and cell_state(c, store) in (None, "running")]

    def take(self) -> Cell | None:
        with self.lock:
            store = read_store()
            free = (cell for cell in self.remaining(store) if cell.name not in self.running)
            for cell in (cell for cell in free if cell_state(cell, store) is None and self.fits(cell, store)):
                if claim(cell):
                    self.running.add(cell.name)
                    return cell
            return None

    def done(self, cell: Cell) -> None:
        with self.lock:
            self.running.discard(cell.name)
            self.tried.add(cell.name)
            cell_file(cell, ".claim").unlink(missing_ok=True)

    def left(self, store: list[dict]) -> list[Cell]:
        """Cells not finished now, the running ones among them (others' runs and new methods counted)."""
        with self.lock:
            return self.remaining(store)


def shape(values) -> tuple:
    """What a cell's run time depends on most: its task, model and training-set size (`values` reads a key)."""
    return tuple(values(key) for key in ("task", "model", "task.max_train_samples"))


def run_kind(values) -> tuple:
    """A cell's shape with its method and budget: the same run at other seeds (its own time, not its shape's)."""
    return ("kind", values("method"), values("budget"), *shape(values))


def cell_value(cell: Cell, key: str):
    return cell_settings(cell).get(key, UNSET_MEANS.get(key))


def typical_seconds(store: list[dict]):
    """cell -> its expected wall time: the median of the store's finished runs of the same method and budget at
    other seeds (a method's size under a budget can change its time tenfold), else of its shape, a shape without
    any at the median over all of them (one long cell does not swing the estimate); 0 for an empty store."""
    by_kind, by_shape = {}, {}
    for record in store:
        wall = (record.get("time") or {}).get("wall_seconds")
        if record.get("status") == "ok" and wall:
            values = functools.partial(config_value, record)
            by_kind.setdefault(run_kind(values), []).append(wall)
            by_shape.setdefault(shape(values), []).append(wall)
    if not by_shape:
        return lambda cell: 0.0
    typical = {key: statistics.median(walls) for key, walls in (by_shape | by_kind).items()}
    fallback = statistics.median(wall for walls in by_shape.values() for wall in walls)

    def expected(cell: Cell) -> float:
        values = functools.partial(cell_value, cell)
        return typical.get(run_kind(values), typical.get(shape(values), fallback))

    return expected


def minutes_left(cells: list[Cell], store: list[dict], jobs: int) -> float:
    """The cells' wall time at `jobs` side by side, each at its typical_seconds."""
    expected = typical_seconds(store)
    return sum(expected(cell) for cell in cells) / jobs / 60


def run(parts: list[str], jobs: int, minutes: float | None = None) -> None:
    """Every cell not yet answered, `jobs` at a time (one thread each), in grid order; with `minutes`, only cells
    expected to end within that many minutes from now (a session that ends then loses no run half done)."""
    deadline = None if minutes is None else time.time() + 60 * minutes
    queue, store = Queue(parts, deadline), read_store()
    todo = queue.remaining(store)
    elsewhere = sum(1 for cell in todo if cell_state(cell, store) == "running")
    print(
        f"{len(grid(parts)) - len(todo)} cell(s) answered, {elsewhere} running in another process, "
        f"{len(todo) - elsewhere} to run with {jobs} job(s) (about {minutes_left(todo, store, jobs):.0f} min)",
        flush=True,
    )
    finished = [0]

    def work() -> None:
        while True:
            cell = queue.take()
            if cell is None:
                return
            code, seconds = run_cell(cell, threads=1)
            queue.done(cell)
            finished[0] += 1
            store = read_store()
            left = queue.left(store)  # counted now: a long cell's neighbours finished while it ran
            print(
                f"[{finished[0]} run, {len(left)} left] {cell.part}: {cell.name}: exit {code}, {seconds:.0f} s "
                f"(about {minutes_left(left, store, jobs):.0f} min left)",
                flush=True,
            )

    workers = [threading.Thread(target=work) for _ in range(jobs)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    store = read_store()
    left = queue.left(store)
    elsewhere = [cell for cell in left if cell_state(cell, store) == "running" or held(cell)]  # ours have ended
    if elsewhere:
        print(f"{len(elsewhere)} cell(s) still running in another process, which finishes them", flush=True)
    if deadline is not None and len(left) > len(elsewhere):
        print(
            f"stopped at the {minutes:g}-minute limit: {len(left) - len(elsewhere)} cell(s) left for the next run",
            flush=True,
        )


def status(parts: list[str]) -> None:
    store = read_store()
    for part in parts:
        cells = PARTS[part]()
        states = [cell_state(cell, store) for cell in cells]
        print(
            f"{part}: {len(cells)} cells, {states.count('ok')} ok, {states.count('refused')} refused, "
            f"{states.count('running')} running, {states.count(None)} to run"
        )


# The report's sections: (folder, title, the parts whose records it reads, model, task of its plots and methods table)
SECTIONS = (
    (
        "headline",
        f"1. Every method on SST-2 ({HEADLINE_SAMPLES:,} training examples, full dev set)",
        ("headline",),
        MODEL,
        "sst2",
    ),
    (
        "searched",
        "1b. Methods whose defaults collapsed: the learning rate chosen from the same five trials on held-out data",
        ("searched",),
        MODEL,
        "sst2",
    ),
    (
        "rte",
        "1c. Every method on RTE, seed 0: the CLI's example (MiniLM-L6 sits near chance on RTE, so it does not rank)",
        ("rte",),
        MODEL,
        "rte",
    ),
    (
        "survey_glue",
        f"2. The survey tables' GLUE columns (full training sets; SST-2 is part 1's, {HEADLINE_SAMPLES:,} examples)",
        ("survey_glue", "headline"),
        MODEL,
        "rte",
    ),
    (
        "searched_glue",
        "2b. Part 2's collapsed defaults: the learning rate chosen from the same five trials on held-out data",
        ("searched_glue",),
        MODEL,
        "rte",
    ),
    ("matched_budget", "3. A matched budget: 0.3M trainable parameters on SST-2", ("matched_budget",), MODEL, "sst2"),
    (
        "searched_budget",
        "3b. Part 3's collapsed defaults: the learning rate chosen from the same five trials on held-out data",
        ("searched_budget",),
        MODEL,
        "sst2",
    ),
    (
        "low_resource",
        f"4. Low resource: K = 100, 500, 1000 SST-2 examples, {LOW_RESOURCE_STEPS} optimizer steps at every K",
        ("low_resource",),
        MODEL,
        "sst2",
    ),
    (
        "searched_low_resource",
        "4b. Part 4's collapsed defaults: the learning rate chosen from the same five trials on held-out data",
        ("searched_low_resource",),
        MODEL,
        "sst2",
    ),
    ("generation", "5. Generation: SmolLM2-135M on E2E", ("generation",), "smollm2_135m", "e2e_nlg"),
    (
        "searched_generation",
        "5b. Part 5's collapsed defaults: the learning rate chosen from the same five trials on held-out data",
        ("searched_generation",),
        "smollm2_135m",
        "e2e_nlg",
    ),
)
# Sections whose only table is their search's: their runs span tasks or sizes that the survey tables, built for
# one task, would mix (part 1b's are all on part 1's data and have its tables too)
SEARCH_ONLY = {"searched_glue", "searched_budget", "searched_low_resource", "searched_generation"}
INTRODUCTION = """# The published results

Real runs of `python -m peftbench` on one machine (its CPU, threads and package versions are in every
record's `provenance`), one JSON record per run under `records/`. Everything below is generated from
those records by `make report-published` (`python -m peftbench.published report`); a test rebuilds it
and compares it byte for byte. `make published-grid` (`python -m peftbench.published run`) runs the
cells not yet answered, so another machine can repeat or extend the set; `python -m peftbench.published
status` counts them.

Runs of the grid ran two at a time with one thread each: accuracy does not depend on that, but their
step times and latencies are disturbed by the neighbouring run. Runners started side by side on one store
share its cells; `python -m peftbench.published finished` lists the finished records not yet committed.
"""
COSTS_FROM_RUNS = "The step time and latency columns are the runs' own, measured side by side: indicative only."
COSTS_FROM_BENCHMARK = (
    "On {model} / {task}, the step time and latency columns, and the throughput and latency panels of its "
    "plots, come from `make bench-methods` (`costs.json`, "
    "{finished}): every method in one process, one thread, the same {steps} training batches and the same "
    "inference batch, in {rounds} interleaved rounds; the runs' own, measured side by side, are in their records. "
    "Peak memory is each run's own process."
)


OWN_COSTS = (
    "Step time and latency here: {own} of the {total} finished runs keep their own, measured side by side "
    "(indicative only), because the cost benchmark did not measure their method, model, task or size."
)
COUNTS_INTRODUCTION = (
    "Every count in `reference/published_param_counts.csv`, counted again by `python -m peftbench.count` on the "
    "meta device (the architecture at full size, no weights), beside the published number, with its verdict."
)
EXPLORER_NOTE = "The published results set: runs of the grid ran two at a time with one thread each. "


def read_costs(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def costs_note(costs: dict | None) -> str:
    if costs is None:
        return COSTS_FROM_RUNS
    settings = costs["settings"]
    return COSTS_FROM_BENCHMARK.format(
        model=settings["model"],
        task=settings["task"],
        finished=costs["finished_at"][:10],
        steps=settings["steps_per_round"],
        rounds=settings["rounds"],
    )


def with_costs(store: list[dict], costs: dict | None) -> list[dict]:
    """The records, with the step time, throughput and latencies of each ok run whose method, model and task the
    cost benchmark measured, in the configuration it measured (the same trainable count: a matched-budget run
    at another rank keeps its own), replaced by the benchmark's (equal conditions for every method; the runs'
    own ran side by side). Throughput becomes the batch size over the benchmark's median step, so the plots'
    panels and the tables read the same measurement. A replaced record says so in `costs_source`; the files
    are not changed."""
    if costs is None:
        return store
    settings, replaced = costs["settings"], []
    for record in store:
        config = record.get("config") or {}
        measured = costs["methods"].get((config.get("method") or {}).get("name"))
        same_run = (config.get("model") or {}).get("name") == settings["model"] and (config.get("task") or {}).get(
            "name"
        ) == settings["task"]
        same_size = measured is not None and (record.get("params") or {}).get("trainable") == measured["trainable"]
        if record.get("status") != "ok" or not same_size or not same_run:
            replaced.append(record)
            continue
        record = copy.deepcopy(record)
        step = measured["step_seconds"]["median"]
        record["throughput"] |= {"median_step_seconds": step, "samples_per_second": settings["batch_size"] / step}
        record["latency"]["method"] |= {
            "overhead_pct": measured["overhead_pct"],
            "median_ms": measured["latency_ms"]["median"],
        }
        if record["latency"].get("merged") and measured["merged_overhead_pct"] is not None:
            record["latency"]["merged"] |= {
                "overhead_pct": measured["merged_overhead_pct"],
                "median_ms": measured["merged_latency_ms"]["median"],
            }
        record["costs_source"] = COSTS.name
        replaced.append(record)
    return replaced


def section_records(store: list[dict], parts: tuple[str, ...]) -> list[dict]:
    cells = [cell for part in parts for cell in PARTS[part]()]
    return [record for record in store if any(answers(record, cell) for cell in cells)]


def has_ours(table) -> bool:
    return any(entry.ours is not None for entry in table.entries.values())


def refusal_lines(records: list[dict]) -> list[str]:
    """One line per refused configuration: the method and the one sentence it was refused with."""
    refused = {}
    for record in records:
        error = record.get("error") or {}
        if record.get("status") == "failed" and error.get("type") in REFUSALS:
            refused.setdefault(record["run"]["method"], error["message"].splitlines()[0])
    return [f"- `{method}`: {message}" for method, message in sorted(refused.items())]


def status_lines(store: list[dict]) -> list[str]:
    lines = [
        "| Part | Cells | ok | refused | to run | Run hours (sum of the runs' wall time) |",
        "|---|---|---|---|---|---|",
    ]
    for part, cells in ((part, make()) for part, make in PARTS.items()):
        states = [cell_state(cell, store) for cell in cells]
        runs = [r for r in section_records(store, (part,)) if r.get("status") == "ok"]
        hours = sum((r.get("time") or {}).get("wall_seconds", 0.0) for r in runs) / 3600
        lines.append(
            f"| {part} | {len(cells)} | {states.count('ok')} | {states.count('refused')} | {states.count(None)} "
            f"| {hours:.1f} |"
        )
    return lines


def finished_uncommitted() -> list[Path]:
    """The store's records of finished cells (ok, or refused before any work) that git does not track yet: what
    to commit while the grid runs (a running, failed or interrupted record is no result)."""
    from peftbench.records import load_record, record_paths

    tracked = tracked_records()
    if tracked is None:  # no git checkout: nothing to commit
        return []
    tracked, finished = set(tracked), []
    for path in record_paths(RECORDS):
        record = load_record(path)
        refused = record and (record.get("error") or {}).get("type") in REFUSALS
        if record and path not in tracked and (record.get("status") == "ok" or refused):
            finished.append(path)
    return finished


def tracked_records() -> list[Path] | None:
    """The store's record files that git tracks; None outside a git checkout."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", str(RECORDS)], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return [ROOT / name for name in sorted(filter(None, listed.split("\0")))]


def committed_records() -> list[dict]:
    """The store's records that git tracks (all of them outside a git checkout): what the committed report is of."""
    from peftbench.records import load_record

    tracked = tracked_records()
    if tracked is None:
        return read_store()
    return [record for path in tracked if (record := load_record(path))]


README_START = "<!-- published results: written by make report-published from results/published/records -->"
README_END = "<!-- end of the published results -->"


# What a search's caption says of the runs whose defaults it searches
SEARCH_CAPTIONS = {
    "searched": f"on SST-2 (MiniLM-L6, {HEADLINE_SAMPLES:,} training examples, 3 epochs)",
    "searched_glue": "in part 2 (MiniLM-L6, the tasks' full training sets, 3 epochs)",
    "searched_budget": f"at the matched budget of part 3 (MiniLM-L6, {HEADLINE_SAMPLES:,} SST-2 training examples)",
    "searched_low_resource": f"in part 4 (MiniLM-L6, K SST-2 training examples, {LOW_RESOURCE_STEPS} steps)",
    "searched_generation": "in part 5 (SmolLM2-135M, 1,000 E2E training pairs, 3 epochs)",
}
EVALUATED_ON = {"searched_generation": "test"}  # part 5 scores the first 500 E2E test pairs; the others GLUE dev


def setting_label(setting: tuple[str, ...], part: str) -> str:
    """What tells the setting from the part's others: `lora` in part 1, `lora, rte` in part 2."""
    common = set.intersection(*(set(other) for other in settings_of(part)))
    shown = [o.partition("=")[2] if o.startswith("+") else o.rsplit(".", 1)[-1] for o in setting if o not in common]
    return ", ".join(shown)


def search_table(store: list[dict], search: str = "searched") -> list[str]:
    """A search as one table: per setting whose defaults collapsed, its default result on dev, each trial
    learning rate's score on the held-out training data (the chosen one bold) and the chosen rate's result
    on dev, so the searched result stands beside the default it replaces, labelled."""
    from peftbench.report.aggregate import cell, collapse_reason

    def summary(runs: list[dict]) -> str:
        if not runs:
            return "–"
        metric = runs[0]["metrics"]["main_metric"]
        found = cell([r["metrics"]["final"][metric] for r in runs])
        text = f"{found.mean:.3f}" + (f" ± {found.std:.3f}" if found.std is not None else "") + f" (n={found.n}"
        collapsed = sum(1 for r in runs if collapse_reason(r))
        return text + (f", {collapsed} collapsed)" if collapsed else ")")

    def answering(cells: list[Cell]) -> list[dict]:
        return [r for r in ok if any(answers(r, c) for c in cells)]

    part, ok, rows = SEARCHED_OF[search], [r for r in store if r.get("status") == "ok"], []
    scored = EVALUATED_ON.get(search, "dev")
    seeds = settings_of(part)
    for setting in collapsed_settings(store, part):
        trials = {rate: answering([trial(search, setting, rate)]) for rate in LEARNING_RATES}
        held_out = sorted({r["data"]["eval_examples"] for runs in trials.values() for r in runs})
        chosen = chosen_rate(store, search, setting)
        finals = [Cell(search, (*setting, f"trainer.lr={chosen}", f"seed={s}")) for s in seeds[setting] if chosen]
        scores = [
            f"**{summary(trials[rate])}**" if rate == chosen else summary(trials[rate]) for rate in LEARNING_RATES
        ]
        default = summary(answering([Cell(part, (*setting, f"seed={s}")) for s in seeds[setting]]))
        if chosen and all(collapse_reason(r) for runs in trials.values() for r in runs):
            chosen_text = f"{chosen} (no rate learned: every trial collapsed)"  # the best of five collapses
        else:
            chosen_text = chosen or "–"
        rows.append(
            f"| {setting_label(setting, part)} | {', '.join(f'{n:,}' for n in held_out) or '–'} | {default} | "
            f"{' | '.join(scores)} | {chosen_text} | {summary(answering(finals))} |"
        )
    return [
        f"Settings whose defaults collapsed {SEARCH_CAPTIONS[search]}: the main metric at the default learning rate "
        f"on {scored} (the seeds its part runs), at each of the five trial rates (seed 0) on held-out training data "
        f"(never {scored}; the chosen, best one bold), and at the chosen rate on {scored} (the same seeds). Mean "
        "± std (n runs); collapsed runs are counted in their cells.",
        "",
        f"| Setting | Held-out examples | Default, {scored} | "
        + " | ".join(f"lr {rate}, held out" for rate in LEARNING_RATES)
        + f" | Chosen lr | Chosen, {scored} |",
        "|---|" + "---|" * (len(LEARNING_RATES) + 4),
        *rows,
    ]


def headline_block(store: list[dict], out: Path, costs: dict | None) -> str:
    """The repository README's Results block: the headline table and Pareto plot, as the report wrote them."""
    cells = PARTS["headline"]()
    states = [cell_state(cell, store) for cell in cells]
    folder = out / "report" / "headline"
    table = (
        (folder / "methods_measured.md").read_text(encoding="utf-8")
        if (folder / "methods_measured.md").is_file()
        else ""
    )
    where = STORE.relative_to(ROOT).as_posix()
    lines = [
        README_START,
        f"**Every method on SST-2** ({states.count('ok')} of {len(cells)} runs finished: "
        f"{len(served_methods())} methods x seeds 0-2, filled in as the grid runs; "
        f"{', '.join(f'`{m}`' for m in unserved()) or 'no method'} cannot serve a BERT-type model). "
        f"MiniLM-L6 (pretrained), a seeded {HEADLINE_SAMPLES:,}-example subset of SST-2's training set, the full "
        "dev set (872), 3 epochs, every method at its defaults. SST-2 is the headline because it separates "
        "methods on this model (RTE does not: every method measured sits at 0.53-0.58 there). The runs ran two "
        "at a time, each one "
        f"`python -m peftbench +method=<method> {' '.join(HEADLINE)} seed=<0, 1 or 2>`.",
        "",
        costs_note(costs),
        "",
        table.rstrip("\n"),
        "",
        f"![Accuracy against cost, SST-2]({where}/report/headline/pareto_sst2_minilm_l6.png)",
        "",
        f"The whole set: [{where}/README.md]({where}/README.md) (every part's tables and plots) and "
        f"[{where}/index.html]({where}/index.html) (filter, sort, hover). Rebuilt by `make report-published`; "
        "the grid runs with `make published-grid` (resumable; `MINUTES=170` starts only the cells expected to end "
        "within 170 minutes).",
        README_END,
    ]
    return "\n".join(lines)


def write_readme_block(readme: Path, block: str) -> None:
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < 0:
        raise ValueError(f"{readme} has no published-results block ({README_START} ... {README_END}).")
    readme.write_text(text[:start] + block + text[end + len(README_END) :], encoding="utf-8")


def data_note_lines(records: list[dict]) -> list[str]:
    """What the section's runs said of their data where it differs from the paper's (a record's `data.note`,
    for example E2E offline training on the official dev set), once per note."""
    from peftbench.report.aggregate import lookup

    notes = sorted({lookup(r, "data.note") for r in records if r.get("status") == "ok"} - {None})
    return [line for note in notes for line in (f'Data: the runs record "{note}".', "")]


def report(
    out: Path = STORE,
    store: list[dict] | None = None,
    readme: Path | None = ROOT / "README.md",
    costs_path: Path | None = COSTS,
    counts_path: Path | None = COUNTS,
) -> list[Path]:
    """Every section's tables (those with a number of ours) and plots under out/report/, the results explorer
    (out/index.html, linking the records under records/) and out/README.md, from `store` (by default every
    record git tracks, staged ones included: a running or unstaged record is no part of it; outside a git checkout,
    every record in the store) with the cost benchmark's numbers at `costs_path` where it measured them, and
    the published-count table from `counts_path`; and the headline block of `readme` (the repository's README)."""
    from peftbench.report.__main__ import build_tables, write_tables
    from peftbench.report.aggregate import with_added_options
    from peftbench.report.explorer import record_links, write_explorer
    from peftbench.report.index import explorer_line, plot_lines, table_lines
    from peftbench.report.plots import write_plots

    store = with_added_options(committed_records() if store is None else store)
    costs = read_costs(costs_path) if costs_path is not None else None
    store = with_costs(store, costs)
    # links relative to the store, where the committed page lives, wherever `out` is (a rebuild compares bytes)
    explorer = write_explorer(store, out, record_links(RECORDS, STORE), note=EXPLORER_NOTE + costs_note(costs))
    lines = [
        INTRODUCTION.rstrip("\n"),
        "",
        costs_note(costs),
        "",
        explorer_line(explorer, out),
        "",
        "## The grid",
        "",
        *status_lines(store),
        "",
    ]
    written = []
    for folder, title, parts, model, task in SECTIONS:
        records = section_records(store, parts)
        lines += [f"## {title}", ""]
        if not any(record.get("status") == "ok" for record in records):
            planned = search_table(store, folder) if folder in SEARCH_ONLY else []
            lines += ["No finished runs yet.", ""]
            if planned[4:]:  # the settings to search, beside their defaults: the trials are still to run
                lines += ["### The learning-rate search (to run)", "", *planned, ""]
            continue
        lines += data_note_lines(records)
        own = sum(1 for r in records if r.get("status") == "ok" and "costs_source" not in r)
        if costs is not None and own and folder not in SEARCH_ONLY:
            lines += [OWN_COSTS.format(own=own, total=sum(1 for r in records if r.get("status") == "ok")), ""]
        search = []
        if folder in SEARCHED_OF:  # the trials are scored on held-out training data: their own table, not dev's
            search = [out / "report" / folder / "learning_rate_search.md"]
            search[0].parent.mkdir(parents=True, exist_ok=True)
            search[0].write_text("\n".join(search_table(store, folder)) + "\n", encoding="utf-8")
            records = [r for r in records if config_value(r, "task.heldout_fraction") is None]
        if folder in BORROWED_BASE and not any(r["run"]["method"] == BASE and r["status"] == "ok" for r in records):
            records = records + [r for r in section_records(store, ("headline",)) if r["run"]["method"] == BASE]
            lines += [BASE_NOTE, ""]
        paths = []
        if folder not in SEARCH_ONLY:
            built = build_tables(records, model, task, SUBSETS.get(folder))
            tables = {name: table for name, table in built.items() if has_ours(table)}
            paths = write_tables(tables, out / "report" / folder) + write_plots(
                records, out / "report" / folder, model, task
            )
        written += search + paths
        for path in search:
            lines += ["### The learning-rate search", "", *path.read_text(encoding="utf-8").splitlines(), ""]
        if paths:
            lines += ["### Tables", "", *table_lines(paths, out), "", *plot_lines(paths, out)]
        refused = refusal_lines(records)
        if model == MODEL and set(parts) <= EVERY_METHOD:  # left out of the grid: the CLI refuses them first
            refused += [f"- `{method}`: {sentence}" for method, sentence in unserved(model).items()]
        if refused:
            lines += ["### Refused before any work", "", *sorted(refused), ""]
        if folder == "matched_budget" and (fixed := fixed_size_lines(store)):
            lines += ["### Not run: no size knob (their one size, from part 1)", "", *fixed, ""]
    lines += ["## 6. Paper-scale parameter counts (meta device)", ""]
    if counts_path is not None and counts_path.is_file():
        table = out / "report" / "counts" / "published_counts.md"
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text(
            "\n".join(paper_counts.table_lines(json.loads(counts_path.read_text(encoding="utf-8")))) + "\n"
        )
        written.append(table)
        lines += [
            COUNTS_INTRODUCTION,
            "",
            f"[{table.relative_to(out).as_posix()}]({table.relative_to(out).as_posix()})",
            "",
        ]
    else:
        lines += ["Not counted yet: `make published-counts`.", ""]
    index = out / "README.md"
    index.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")
    if readme is not None:
        write_readme_block(readme, headline_block(store, out, costs))
    for stale in set((out / "report").rglob("*")) - set(written):  # a table or plot its records no longer make
        if stale.is_file():
            stale.unlink()
    return [*written, explorer, index]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"run", "status", "report", "counts", "finished"}
    if not argv or argv[0] not in commands or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    options = {"jobs": "2", "parts": ",".join(PARTS), "minutes": ""}
    for argument in argv[1:]:
        key, _, value = argument.partition("=")
        if key not in options:
            print(f"error: unknown argument '{key}'; valid: {', '.join(options)}.", file=sys.stderr)
            raise SystemExit(2)
        options[key] = value
    parts = options["parts"].split(",")
    if unknown := [part for part in parts if part not in PARTS]:
        print(f"error: unknown part '{unknown[0]}'; valid: {', '.join(PARTS)}.", file=sys.stderr)
        raise SystemExit(2)
    if not options["jobs"].isdigit() or int(options["jobs"]) < 1:
        print(
            f"error: jobs={options['jobs']!r} is not valid: it must be a whole number of at least 1.", file=sys.stderr
        )
        raise SystemExit(2)
    minutes = options["minutes"]
    if minutes and not (minutes.replace(".", "", 1).isdigit() and float(minutes) > 0):
        print(f"error: minutes={minutes!r} is not valid: it must be a positive number of minutes.", file=sys.stderr)
        raise SystemExit(2)
    if argv[0] == "run":
        run(parts, int(options["jobs"]), float(minutes) if minutes else None)
    elif argv[0] == "status":
        status(parts)
    elif argv[0] == "finished":
        for path in finished_uncommitted():
            print(path.relative_to(ROOT))
    elif argv[0] == "counts":
        document = paper_counts.write(COUNTS)
        print(f"wrote {COUNTS}: {sum(r['matches'] for r in document['rows'])} of {len(document['rows'])} match")
    else:
        for path in report():
            print(path.relative_to(ROOT))
        if left_out := finished_uncommitted():
            print(
                f"note: {len(left_out)} finished record(s) git does not track are not in the report: git add them "
                "(python -m peftbench.published finished lists them) and run it again.",
                file=sys.stderr,
            )


if __name__ == "__main__":
    main()
