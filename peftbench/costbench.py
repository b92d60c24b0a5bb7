"""Costs under equal conditions: every method in one process, one thread, on the same training batches and
the same inference batch, timed in interleaved rounds. Each round visits every method (in an order rotated
by one each round), so a change in the machine's load during the benchmark falls on all methods alike.

    python -m peftbench.costbench [methods=lora,bitfit] [rounds=3] [steps=5] [out=costs.json] [overrides]
    make bench-methods      # every method, at the published headline's settings -> results/published/costs.json

Without overrides the runs are the published headline's (SST-2, seed 0); with them, exactly those (a
`+task=...` among them).

A method's training steps go through the recipe's own `train` (its optimizer, clipping and hooks), on a
fixed list of batches taken once from the headline task's loader; each round's first step (a fresh
optimizer's state is allocated there) is left out. Latency: single forward passes of the base, of every
tuned model and of every merged copy, on the recipe's latency batch. Peak memory is not measured here:
within one process it cannot be told apart per method, so the published memory column stays that of each
run's own process."""

import itertools
import statistics
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf, open_dict
from torch.utils.data import DataLoader
from transformers import set_seed

from peftbench import data, measure, records
from peftbench.hub_models import complete_model_config
from peftbench.models import build_weights
from peftbench.plan import RunPlan, plan_run
from peftbench.tracking import NoTracker
from peftbench.validate import ConfigError, validate

# The published headline's run (published.HEADLINE at seed 0), one thread
HEADLINE_OVERRIDES = ("+task=sst2", "task.max_train_samples=5000", "seed=0", "tracker=none", "num_threads=1")
LATENCY_REPEATS = 5  # single forward passes per model per round, after one warm-up pass
USAGE = "\n\n".join(__doc__.split("\n\n")[1:3])


def plan_for(method_name: str, overrides: list[str]) -> RunPlan:
    """The method's run as the CLI composes and checks it (ConfigError when it cannot run on this model)."""
    from peftbench.cli import compose

    cfg = compose([f"+method={method_name}", *overrides])
    cfg.model = complete_model_config(cfg.model)
    validate(cfg)
    return plan_run(cfg)


def timing_trainer(trainer, steps: int):
    """The run's trainer settings for one round: `steps` optimizer steps, no evaluation, no saved state."""
    trainer = OmegaConf.create(OmegaConf.to_container(trainer, resolve=True))
    with open_dict(trainer):
        trainer.update(max_steps=steps, epochs=1, eval_every_epoch=False, eval_before_training=False)
        trainer.update(save_state_every_steps=None, resume=False)
    return trainer


class Entry:
    """One method in the benchmark: its tuned model (kept across rounds) and the times measured."""

    def __init__(self, plan: RunPlan, model):
        self.plan, self.model, self.merged = plan, model, None
        self.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.step_seconds: list[float] = []
        self.latency_ms: list[float] = []
        self.merged_latency_ms: list[float] = []


def build_entry(plan: RunPlan, splits: data.Splits, device: torch.device) -> tuple[Entry, DataLoader]:
    """The tuned model as the run starts training, and the run's own training loader."""
    from peftbench.recipe import load_data, model_for_training
    from peftbench.train import total_optimizer_steps

    set_seed(plan.cfg.seed)
    model, _, tokenizer = model_for_training(plan, device)
    loader = load_data(plan, splits, tokenizer, device)[0]
    # data-dependent choices (FishMask's mask, FAR's nodes, EVA's init) from the run's real loader and length
    plan.method.on_train_start(model, total_optimizer_steps(plan.cfg.trainer, len(loader)), loader)
    return Entry(plan, model), loader


def time_steps(entry: Entry, batches: DataLoader, steps: int, device: torch.device) -> list[float]:
    from peftbench.train import no_evaluation, train

    trainer = timing_trainer(entry.plan.cfg.trainer, steps + 1)
    result = train(entry.model, entry.plan.method, batches, no_evaluation, trainer, NoTracker(), device)
    return result.step_seconds[1:]  # the first step allocates the fresh optimizer's state


def summary(values: list[float]) -> dict:
    quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {"median": statistics.median(values), "q1": quartiles[0], "q3": quartiles[2], "n": len(values)}


def rotated(names: list[str], by: int) -> list[str]:
    by %= len(names)
    return names[by:] + names[:by]


def run(methods: list[str], rounds: int, steps: int, overrides: list[str], out: Path) -> dict:
    device = torch.device("cpu")
    torch.set_num_threads(1)
    entries: dict[str, Entry] = {}
    refused: dict[str, str] = {}
    splits = batches = None
    for index, name in enumerate(methods, 1):
        try:
            plan = plan_for(name, overrides)
        except ConfigError as error:
            refused[name] = str(error)
            print(f"[build {index}/{len(methods)}] {name}: refused ({error})", file=sys.stderr, flush=True)
            continue
        if splits is None:
            splits = data.load_task(plan.cfg.task, plan.cfg.data_dir, plan.cfg.seed)
        entries[name], loader = build_entry(plan, splits, device)
        if batches is None:  # the first batches of the run's seeded order, the same for every method
            fixed = list(itertools.islice(loader, steps + 1))
            batches = DataLoader(fixed, batch_size=None, generator=torch.Generator().manual_seed(0))
        print(f"[build {index}/{len(methods)}] {name}", file=sys.stderr, flush=True)
    if not entries:
        raise ConfigError(f"Every method was refused on this model: {'; '.join(refused.values())}")
    names, first = list(entries), next(iter(entries.values())).plan
    started = time.perf_counter()
    for round_index in range(rounds):  # training steps, interleaved
        for name in rotated(names, round_index):
            entries[name].step_seconds += time_steps(entries[name], batches, steps, device)
        print(f"[steps round {round_index + 1}/{rounds}] {time.perf_counter() - started:.0f} s", file=sys.stderr)

    for entry in entries.values():
        if entry.plan.method.mergeable:
            entry.merged = measure.merged_copy(entry.model, entry.plan.method)
    m = first.cfg.measure
    latency_batch = measure.latency_batch(entries[names[0]].model, m.latency_batch_size, m.latency_seq_length)
    base = build_weights(first.cfg.model, first.num_labels)
    timing = dict(device=device, warmup=1, repeats=LATENCY_REPEATS, min_warmup_seconds=0.0)
    base_latency_ms = []
    for round_index in range(rounds):  # latency, interleaved; the base once per round
        base_latency_ms.append(measure.latency(base, latency_batch, **timing)["median_ms"])
        for name in rotated(names, round_index):
            entry = entries[name]
            entry.latency_ms.append(measure.latency(entry.model, latency_batch, **timing)["median_ms"])
            if entry.merged is not None:
                entry.merged_latency_ms.append(measure.latency(entry.merged, latency_batch, **timing)["median_ms"])
        print(f"[latency round {round_index + 1}/{rounds}] {time.perf_counter() - started:.0f} s", file=sys.stderr)

    document = costs_document(entries, refused, base_latency_ms, first, fixed, rounds, steps, overrides, device)
    document["seconds"] = time.perf_counter() - started
    records.write_record(document, out)
    print(f"wrote {out}: {len(entries)} methods, {len(refused)} refused", file=sys.stderr)
    return document


def costs_document(entries, refused, base_latency_ms, plan, batches, rounds, steps, overrides, device) -> dict:
    base_ms = statistics.median(base_latency_ms)
    methods = {}
    for name, entry in entries.items():
        latency_ms = statistics.median(entry.latency_ms)
        merged_ms = statistics.median(entry.merged_latency_ms) if entry.merged_latency_ms else None
        methods[name] = {
            "trainable": entry.trainable,
            "step_seconds": summary(entry.step_seconds),
            "latency_ms": summary(entry.latency_ms),
            "overhead_pct": measure.overhead_pct(latency_ms, base_ms),
            "merged_latency_ms": summary(entry.merged_latency_ms) if merged_ms is not None else None,
            "merged_overhead_pct": measure.overhead_pct(merged_ms, base_ms) if merged_ms is not None else None,
        }
    cfg = plan.cfg
    return {
        "kind": "costbench",
        "settings": {
            "overrides": list(overrides),
            "model": cfg.model.name,
            "task": cfg.task.name,
            "batch_size": cfg.trainer.batch_size,
            "precision": cfg.trainer.precision,
            "threads": torch.get_num_threads(),
            "rounds": rounds,
            "steps_per_round": steps,
            "train_batch_tokens": [int(batch["attention_mask"].sum()) for batch in batches[1:]],
            "latency_batch": [cfg.measure.latency_batch_size, cfg.measure.latency_seq_length],
            "latency_repeats_per_round": LATENCY_REPEATS,
        },
        "base_latency_ms": summary(base_latency_ms),
        "methods": methods,
        "refused": refused,
        "provenance": records.provenance(device),
        "finished_at": records.utc_now(),
    }


OPTIONS = {"methods": None, "rounds": "3", "steps": "5", "out": None}


def main(argv: list[str] | None = None) -> None:
    from peftbench import published

    argv = sys.argv[1:] if argv is None else argv
    if {"-h", "--help"} & set(argv):
        print(USAGE)
        return
    options, overrides = dict(OPTIONS), []
    for argument in argv:
        key, _, value = argument.partition("=")
        if key in options:
            options[key] = value
        else:
            overrides.append(argument)
    known = published.method_names()
    methods = options["methods"].split(",") if options["methods"] else known
    unknown = [name for name in methods if name not in known]
    for key in ("rounds", "steps"):
        if not options[key].isdigit() or int(options[key]) < 1:
            print(f"costbench: {key}={options[key]} is not a whole number of at least 1.", file=sys.stderr)
            raise SystemExit(2)
    if unknown:
        print(f"costbench: unknown method(s) {', '.join(unknown)}; available: {', '.join(known)}.", file=sys.stderr)
        raise SystemExit(2)
    out = Path(options["out"]) if options["out"] else published.STORE / "costs.json"
    try:
        run(methods, int(options["rounds"]), int(options["steps"]), overrides or list(HEADLINE_OVERRIDES), out)
    except ConfigError as error:
        print(f"costbench: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
