"""Benchmarks of the measurement machinery itself (`make bench`):

(a) latency repeatability: coefficient of variation of the median latency over 5 repeats (target <= 5%);
(b) harness overhead: training step time through peftbench's loop versus a bare PyTorch loop doing
    the same steps on the same model, method and batches, side by side in one process (target <= 3%);
(c) the count command's wall time for GPT-3 175B (a fresh process, imports included).

    python benchmarks/bench_costs.py [model=minilm_l6] [steps=40] [rounds=3]
"""

import statistics
import subprocess
import sys
import time

import torch
from hydra import compose, initialize_config_dir
from torch.utils.data import DataLoader
from transformers import get_linear_schedule_with_warmup, set_seed

from peftbench import CONF_DIR, data, formats, measure
from peftbench.plan import apply_method, build_base, plan_run
from peftbench.tracking import NoTracker
from peftbench.train import train


def arguments(defaults: dict) -> dict:
    """The benchmarks' `key=value` command-line options over their defaults."""
    return defaults | dict(argument.split("=", 1) for argument in sys.argv[1:])


def compose_run(model: str, method: str = "lora"):
    """An RTE run config; `method` is a method name and its options, e.g. "adapter_houlsby method.bottleneck=8"."""
    name, *options = method.split()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            config_name="config",
            overrides=[f"+method={name}", "+task=rte", f"model={model}", "tracker=none", *options],
        )


def tuned_model(cfg):
    set_seed(cfg.seed)
    plan = plan_run(cfg)
    model, tokenizer = build_base(plan)
    return apply_method(model, plan), tokenizer, plan.method


def fixed_batches(cfg, tokenizer, count: int) -> list[dict]:
    if cfg.data_dir:
        examples = data.load_task(cfg.task, cfg.data_dir, cfg.seed).train_examples()
    else:  # no data directory: synthetic pairs of a realistic length
        examples = [
            data.Example(("a premise sentence about the world " * 6, "a short hypothesis"), i % 2) for i in range(512)
        ]
    features = formats.classifier_features(examples, tokenizer, cfg.task, cfg.trainer.max_seq_length)
    loader = data.make_loader(
        features, formats.classifier_collate(tokenizer), cfg.trainer.batch_size, shuffle=True, seed=cfg.seed
    )
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == count:
            return batches
    return batches


def bare_loop_step_seconds(model, batches: list[dict], trainer) -> list[float]:
    """The same steps written by hand: AdamW, linear schedule, gradient clipping."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=trainer.lr, weight_decay=trainer.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(trainer.warmup_ratio * len(batches)), len(batches))
    model.train()
    times = []
    for batch in batches:
        started = time.perf_counter()
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), trainer.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    return times


def batch_loader(batches: list[dict]) -> DataLoader:
    """The fixed, already collated batches in their order, as a loader (the training loop keeps its
    generator's state for resuming)."""
    return DataLoader(batches, batch_size=None, generator=torch.Generator())


def harness_step_seconds(model, method, batches, cfg) -> list[float]:
    loader = batches if isinstance(batches, DataLoader) else batch_loader(batches)
    trainer = cfg.trainer.copy()
    trainer.max_steps, trainer.eval_every_epoch = len(loader), False
    method.on_train_start(model, len(loader), loader)
    no_evaluation = lambda model: formats.Evaluation(metrics={}, predictions=[], labels=[])  # step times only
    result = train(model, method, loader, no_evaluation, trainer, NoTracker(), torch.device("cpu"))
    return result.step_seconds


def latency_repeatability(model, cfg, repeats: int) -> dict:
    """The run's own latency measurement (cfg.measure settings), repeated."""
    m = cfg.measure
    batch = measure.latency_batch(model, m.latency_batch_size, m.latency_seq_length)
    timing = dict(
        device=torch.device("cpu"),
        warmup=m.latency_warmup,
        repeats=m.latency_repeats,
        min_warmup_seconds=m.latency_warmup_seconds,
    )
    medians = [measure.latency(model, batch, **timing)["median_ms"] for _ in range(repeats)]
    return {"medians_ms": medians, "cv_pct": 100 * statistics.stdev(medians) / statistics.mean(medians)}


def harness_overhead(model, method, batches, cfg, rounds: int, warmup: int = 5) -> dict:
    """Alternate harness and bare blocks, each going first in every other round, so that drift in
    machine speed and any first-block effect hit both alike."""
    harness, bare = [], []
    for round_index in range(rounds):
        blocks = [
            ("harness", lambda: harness_step_seconds(model, method, batches, cfg)),
            ("bare", lambda: bare_loop_step_seconds(model, batches, cfg.trainer)),
        ]
        for name, block in blocks if round_index % 2 == 0 else reversed(blocks):
            (harness if name == "harness" else bare).extend(block()[warmup:])
    harness_median, bare_median = statistics.median(harness), statistics.median(bare)
    return {
        "harness_median_s": harness_median,
        "bare_median_s": bare_median,
        "steps_each": len(harness),
        "overhead_pct": 100 * (harness_median - bare_median) / bare_median,
    }


def count_command_seconds() -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "peftbench.count", "+method=lora", "model=gpt3_175b", "method.r=1"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    args = arguments({"model": "minilm_l6", "steps": "30", "rounds": "4", "repeats": "5"})
    cfg = compose_run(args["model"])
    print(
        f"model {args['model']}, torch threads {torch.get_num_threads()}, data {cfg.data_dir or 'synthetic'}",
        flush=True,
    )
    model, tokenizer, method = tuned_model(cfg)

    latency = latency_repeatability(model, cfg, int(args["repeats"]))
    m = cfg.measure
    print(
        f"(a) latency repeatability: medians {', '.join(f'{ms:.2f}' for ms in latency['medians_ms'])} ms "
        f"(batch {m.latency_batch_size} x {m.latency_seq_length}, {m.latency_repeats} timed passes after "
        f">= {m.latency_warmup} warm-up passes and {m.latency_warmup_seconds:g} s) "
        f"-> CV {latency['cv_pct']:.2f}% (target <= 5%)",
        flush=True,
    )

    batches = fixed_batches(cfg, tokenizer, int(args["steps"]))
    overhead = harness_overhead(model, method, batches, cfg, int(args["rounds"]))
    print(
        f"(b) harness overhead: peftbench {1000 * overhead['harness_median_s']:.1f} ms/step vs bare loop "
        f"{1000 * overhead['bare_median_s']:.1f} ms/step over {overhead['steps_each']} steps each "
        f"-> {overhead['overhead_pct']:+.2f}% (target <= 3%)",
        flush=True,
    )

    seconds = count_command_seconds()
    print(f"(c) python -m peftbench.count +method=lora model=gpt3_175b method.r=1: {seconds:.1f} s wall", flush=True)


if __name__ == "__main__":
    main()
