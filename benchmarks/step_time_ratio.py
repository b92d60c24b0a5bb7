"""Training step time of two methods at a similar parameter count, on the same batches in one process,
in alternating blocks (each goes first in every other round, so drift in machine speed hits both):
by default Houlsby adapters of bottleneck 8 against LoRA r=8 on q and v (about 78K and 74K trained
numbers on MiniLM), the ratio the adapters issue asks for. Also each one's inference latency overhead.

    python benchmarks/step_time_ratio.py [model=minilm_l6] [steps=30] [rounds=4] \
        [a="adapter_houlsby method.bottleneck=8"] [b="lora"]
"""

import statistics

import torch
from bench_costs import arguments, compose_run, fixed_batches, harness_step_seconds, tuned_model

from peftbench import data, measure
from peftbench.models import build_model

DEFAULTS = {
    "model": "minilm_l6",
    "steps": "30",
    "rounds": "4",
    "a": "adapter_houlsby method.bottleneck=8",
    "b": "lora",
}


def latency_ms(model, cfg) -> float:
    m = cfg.measure
    batch = measure.latency_batch(model, m.latency_batch_size, m.latency_seq_length)
    return measure.latency(
        model, batch, torch.device("cpu"), m.latency_warmup, m.latency_repeats, m.latency_warmup_seconds
    )["median_ms"]


def main() -> None:
    args = arguments(DEFAULTS)
    runs = {}
    for key in ("a", "b"):
        cfg = compose_run(args["model"], args[key])
        model, tokenizer, method = tuned_model(cfg)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        runs[key] = {
            "spec": args[key],
            "cfg": cfg,
            "model": model,
            "method": method,
            "trainable": trainable,
            "steps": [],
            "batches": fixed_batches(cfg, tokenizer, int(args["steps"])),
        }
    print(
        f"model {args['model']}, torch threads {torch.get_num_threads()}, "
        f"{args['steps']} steps x {args['rounds']} rounds each",
        flush=True,
    )
    for round_index in range(int(args["rounds"])):
        for key in ("a", "b") if round_index % 2 == 0 else ("b", "a"):
            run = runs[key]
            step_seconds = harness_step_seconds(run["model"], run["method"], run["batches"], run["cfg"])
            run["steps"] += step_seconds[5:]  # after warm-up
    base, _ = build_model(runs["a"]["cfg"].model, data.num_labels(runs["a"]["cfg"].task))
    base_latency = latency_ms(base, runs["a"]["cfg"])
    for run in runs.values():
        run["median_s"] = statistics.median(run["steps"])
        overhead = 100 * (latency_ms(run["model"], run["cfg"]) - base_latency) / base_latency
        print(
            f"{run['spec']}: {run['trainable']:,} trained (head included), "
            f"median step {1000 * run['median_s']:.1f} ms over {len(run['steps'])} steps, "
            f"inference latency {overhead:+.1f}% vs the base",
            flush=True,
        )
    print(
        f"step-time ratio {runs['a']['spec']} / {runs['b']['spec']}: "
        f"{runs['a']['median_s'] / runs['b']['median_s']:.3f}"
    )


if __name__ == "__main__":
    main()
