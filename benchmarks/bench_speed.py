"""Training speed against what the machine can do and against the peers a user would pick (`make bench-speed`).

For each method (peftbench names: `full_ft`, `lora`), on the same fixed batches of RTE training data (synthetic
pairs without a data directory), one process times the optimizer step of three loops:

- peftbench: its own loop, `peftbench.train.train`, on a loader of the fixed batches, with the run's AdamW and
  linear warm-up schedule (`bench_costs.harness_step_seconds`).
- Trainer+peft: the same step as a user writes it with the transformers `Trainer`, on the same base weights; for
  LoRA through `peft.get_peft_model(model, LoraConfig(task_type="SEQ_CLS", ...))` with the run's r, alpha,
  dropout and target modules (SEQ_CLS also trains the new head, through peft's `modules_to_save`), for full_ft on
  the plain model. The same batches in the same order (a dataset of the collated batches, a sequential sampler),
  the run's learning rate, weight decay, warm-up share and max_grad_norm, the Trainer's own default optimizer
  (`trainer_optim=` picks another), no evaluation, logging or saving. A step is timed as peftbench times its own:
  wall time from one `on_step_end` (after the optimizer step, the schedule step and zero_grad) to the next, by a
  TrainerCallback, so everything the Trainer does between two optimizer steps counts: fetching the batch, its
  bookkeeping (FLOP and token counts, the gradient norm), its log/save/evaluate checks. The first step of a block
  is timed from `on_epoch_begin`.
- bare: the same step written by hand (`bench_costs.bare_loop_step_seconds`).

They run in blocks of `warmup` + `steps` steps (the first `warmup` of each block are left out: every block starts
a new optimizer), in a rotating order (A B C, B C A, C A B, ...), so that drift in machine speed hits all alike.
Each round also measures the machine's limit: the rate of large square matmuls in fp32 and bf16. The FLOPs of a
step are counted by torch's FlopCounterMode over one batch's forward and backward (matrix products and attention;
elementwise ops and the optimizer are not counted): achieved GFLOP/s = FLOPs per step / median step time.

`precision=bf16` runs every forward under torch.autocast("cpu", dtype=torch.bfloat16): peftbench through its own
`trainer.precision=bf16`, the bare loop inside an autocast block, the Trainer with `bf16=True`, as a user would
write each. The table then also gives each loop's share of the bf16 limit. `compile=true` compiles peftbench's
model (`trainer.compile=true`) and the Trainer's (`torch_compile=True`); the bare loop stays eager, for reference.

    python benchmarks/bench_speed.py [model=minilm_l6] [methods=full_ft,lora] [steps=10] [warmup=3] [rounds=3] \
        [threads=<cores available>] [precision=fp32|bf16] [trainer_optim=<the Trainer's default>] [matmul_size=2048] \
        [compile=false|true]
"""

import contextlib
import os
import statistics
import sys
import tempfile
import time

import peft
import torch
import transformers
from bench_costs import (
    arguments,
    bare_loop_step_seconds,
    batch_loader,
    compose_run,
    fixed_batches,
    harness_step_seconds,
    tuned_model,
)
from torch.utils.flop_counter import FlopCounterMode
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed

from peftbench.plan import build_base, plan_run

LOOPS = ("peftbench", "Trainer+peft", "bare")
PRECISIONS = ("fp32", "bf16")
MATMUL_SECONDS = 0.5  # each limit measurement times matmuls for at least this long


DEFAULTS = {
    "model": "minilm_l6",
    "methods": "full_ft,lora",
    "steps": "10",
    "warmup": "3",
    "rounds": "3",
    "threads": str(len(os.sched_getaffinity(0))),
    "precision": "fp32",
    "trainer_optim": "",
    "matmul_size": "2048",
    "compile": "false",
}


# --- the model as a user sets it up for the Trainer --------------------------------------------------------------


def user_full_ft(model, cfg):
    return model  # the Trainer on the plain model


def user_lora(model, cfg):
    """LoRA as peft's docs write it for a classifier."""
    module_names = [cfg.model.modules[role] for role in cfg.method.target_modules]  # roles -> "query", "value"
    config = peft.LoraConfig(
        task_type="SEQ_CLS",
        r=cfg.method.r,
        lora_alpha=cfg.method.alpha,
        lora_dropout=cfg.method.dropout,
        target_modules=module_names,
    )
    return peft.get_peft_model(model, config)


USER_SETUPS = {"full_ft": user_full_ft, "lora": user_lora}


def user_model(cfg):
    """The same base weights as `bench_costs.tuned_model` builds (the same seed, peftbench's builder)."""
    set_seed(cfg.seed)
    model, _ = build_base(plan_run(cfg))
    return USER_SETUPS[cfg.method.name](model, cfg)


# --- the Trainer's step ------------------------------------------------------------------------------------------


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step, from the previous step's end (the epoch's start for the first)."""

    def __init__(self):
        self.step_seconds, self.last = [], None

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.last = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        self.step_seconds.append(now - self.last)
        self.last = now


def first_item(items: list[dict]) -> dict:
    return items[0]  # each dataset item is already a collated batch


def trainer_arguments(cfg, steps: int, precision: str, optim: str, output_dir: str) -> TrainingArguments:
    trainer = cfg.trainer
    optimizer = {"optim": optim} if optim else {}
    compiled = {"torch_compile": True} if trainer.compile else {}
    return TrainingArguments(
        output_dir=output_dir,
        max_steps=steps,
        per_device_train_batch_size=1,  # one collated batch per item
        learning_rate=trainer.lr,
        weight_decay=trainer.weight_decay,
        lr_scheduler_type="linear",
        warmup_steps=trainer.warmup_ratio,  # a float below 1 is a share of the steps
        max_grad_norm=trainer.max_grad_norm,
        train_sampling_strategy="sequential",
        remove_unused_columns=False,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        bf16=precision == "bf16",
        seed=cfg.seed,
        **optimizer,
        **compiled,
    )


def trainer_step_seconds(model, batches: list[dict], args: TrainingArguments) -> list[float]:
    timer = StepTimer()
    Trainer(model=model, args=args, train_dataset=batches, data_collator=first_item, callbacks=[timer]).train()
    if hasattr(model, "_original_forward"):  # bf16: accelerate wrapped forward in autocast; the next Trainer will too
        model.forward = model._original_forward
    return timer.step_seconds


# --- the machine's limit and the model's FLOPs -------------------------------------------------------------------


def matmul_gflops(dtype: torch.dtype, size: int) -> float:
    """Median rate of size x size matmuls, after one untimed."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b
    seconds = []
    while sum(seconds) < MATMUL_SECONDS or len(seconds) < 3:
        started = time.perf_counter()
        a @ b
        seconds.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(seconds) / 1e9


def forward_backward_flops(model, batch: dict) -> int:
    model.train()
    with FlopCounterMode(display=False) as counter:
        model(**batch).loss.backward()
    model.zero_grad(set_to_none=True)  # the loops start from no gradients
    return counter.get_total_flops()


def mean_step_flops(model, batches: list[dict]) -> float:
    """FLOPs per step over the batches; counted once per batch shape, as they depend on nothing else."""
    by_shape = {}
    for batch in batches:
        shape = tuple(batch["input_ids"].shape)
        if shape not in by_shape:
            by_shape[shape] = forward_backward_flops(model, batch)
    return statistics.mean(by_shape[tuple(batch["input_ids"].shape)] for batch in batches)


def max_logit_difference(model_a, model_b, batch: dict) -> float:
    model_a.eval(), model_b.eval()
    with torch.no_grad():
        return (model_a(**batch).logits - model_b(**batch).logits).abs().max().item()


def trained_count(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --- one method: three loops, alternating ------------------------------------------------------------------------


def measure_method(name: str, args: dict, limits: dict, output_dir: str) -> dict:
    warmup, steps = int(args["warmup"]), int(args["steps"])
    cfg = compose_run(args["model"], name)
    model, tokenizer, method = tuned_model(cfg)
    user = user_model(cfg)
    batches = fixed_batches(cfg, tokenizer, warmup + steps)
    loader = batch_loader(batches)  # the batches as they are, in order
    shapes = sorted({tuple(batch["input_ids"].shape) for batch in batches})
    logit_difference = max_logit_difference(model, user, batches[0])
    flops = mean_step_flops(model, batches[warmup:])
    print(
        f"{name}: trained {trained_count(model):,} (peftbench) / {trained_count(user):,} (Trainer+peft); starting "
        f"logits differ by at most {logit_difference:.1e}; batch shapes {shapes}; {flops / 1e9:.1f} GFLOP/step",
        flush=True,
    )
    bf16 = args["precision"] == "bf16"
    cfg.trainer.precision = args["precision"]  # peftbench: its own trainer.precision option (autocast)
    cfg.trainer.compile = args["compile"] == "true"  # peftbench's trainer.compile; the Trainer's torch_compile

    def bare_steps():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # the hand-written loop's own autocast
            return bare_loop_step_seconds(model, batches, cfg.trainer)

    trainer_args = trainer_arguments(cfg, len(batches), args["precision"], args["trainer_optim"], output_dir)
    loops = {
        "peftbench": lambda: harness_step_seconds(model, method, loader, cfg),
        "Trainer+peft": lambda: trainer_step_seconds(user, batches, trainer_args),
        "bare": bare_steps,
    }
    bare_loop_step_seconds(model, batches[:warmup], cfg.trainer)  # the process's first steps, untimed
    timed = {loop: [] for loop in LOOPS}
    round_medians = {loop: [] for loop in LOOPS}
    for round_index in range(int(args["rounds"])):
        shift = round_index % len(LOOPS)
        for loop in LOOPS[shift:] + LOOPS[:shift]:
            with contextlib.redirect_stdout(sys.stderr):  # the loops' own progress lines; stdout keeps the report
                seconds = loops[loop]()[warmup:]
            timed[loop] += seconds
            round_medians[loop].append(statistics.median(seconds))
        for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            limits[precision].append(matmul_gflops(dtype, int(args["matmul_size"])))
    medians = {loop: statistics.median(seconds) for loop, seconds in timed.items()}
    return {
        "method": name,
        "flops": flops,
        "medians_s": medians,
        "round_medians_s": round_medians,
        "steps_each": len(timed["peftbench"]),
        "trainer_optim": getattr(trainer_args.optim, "value", trainer_args.optim),
    }


# --- report ------------------------------------------------------------------------------------------------------


def table(results: list[dict], limits_gflops: dict[str, float]) -> list[str]:
    """One row per method; achieved GFLOP/s of each loop as a share of each limit given (fp32; bf16 under bf16)."""
    header = (
        f"{'method':<8} {'peftbench':>10} {'Trainer+peft':>13} {'bare':>8} {'pb/Trainer':>11} {'pb/bare':>8} "
        f"{'GFLOP/step':>11} {'pb GFLOP/s':>11}"
    )
    for precision in limits_gflops:
        header += f"   of {precision} limit: {'pb':>6} {'Trainer':>7} {'bare':>6}"
    lines = [header, f"{'':<8} {'ms/step':>10} {'ms/step':>13} {'ms/step':>8}"]
    for result in results:
        medians, gflop = result["medians_s"], result["flops"] / 1e9
        row = (
            f"{result['method']:<8} {1000 * medians['peftbench']:>10.1f} {1000 * medians['Trainer+peft']:>13.1f} "
            f"{1000 * medians['bare']:>8.1f} {medians['peftbench'] / medians['Trainer+peft']:>11.3f} "
            f"{medians['peftbench'] / medians['bare']:>8.3f} {gflop:>11.1f} {gflop / medians['peftbench']:>11.1f}"
        )
        for limit in limits_gflops.values():
            shares = [gflop / medians[loop] / limit for loop in LOOPS]
            row += f"   {'':>15} {shares[0]:>6.1%} {shares[1]:>7.1%} {shares[2]:>6.1%}"
        lines.append(row)
    return lines


def round_lines(results: list[dict]) -> list[str]:
    lines = []
    for result in results:
        rounds = "; ".join(
            f"{loop} " + " ".join(f"{1000 * s:.0f}" for s in result["round_medians_s"][loop]) for loop in LOOPS
        )
        lines.append(f"  {result['method']}: {rounds}")
    return lines


def limit_line(limits: dict, size: int) -> str:
    fp32, bf16 = statistics.median(limits["fp32"]), statistics.median(limits["bf16"])
    verdict = "slower than fp32: no fast bf16 kernels here" if bf16 < fp32 else f"{bf16 / fp32:.2f}x fp32"
    return (
        f"machine limit ({size}x{size} matmul, median of {len(limits['fp32'])} measurements, one per round): "
        f"fp32 {fp32:.1f} GFLOP/s, bf16 {bf16:.1f} GFLOP/s ({verdict})"
    )


def check(args: dict) -> list[str]:
    """Bad options fail before any model is built."""
    methods = args["methods"].split(",")
    for name in methods:
        if name not in USER_SETUPS:
            sys.exit(f"Unknown method '{name}'; valid: {', '.join(USER_SETUPS)}.")
    if args["precision"] not in PRECISIONS:
        sys.exit(f"Unknown precision '{args['precision']}'; valid: {', '.join(PRECISIONS)}.")
    return methods


def main() -> None:
    args = arguments(DEFAULTS)
    methods = check(args)
    torch.set_num_threads(int(args["threads"]))
    transformers.logging.set_verbosity_error()  # the Trainer's per-run notices
    cfg = compose_run(args["model"], methods[0])
    print(
        f"model {args['model']}, batch {cfg.trainer.batch_size} x up to {cfg.trainer.max_seq_length} tokens from "
        f"{cfg.data_dir or 'synthetic pairs'}; torch {torch.__version__}, {torch.get_num_threads()} threads "
        f"({len(os.sched_getaffinity(0))} cores available), CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}; precision {args['precision']}; blocks of {args['warmup']} "
        f"warm-up + {args['steps']} timed steps, {args['rounds']} rounds, loops in rotating order",
        flush=True,
    )
    load_at_start = os.getloadavg()[0]  # other work on the machine shows here and in the per-round medians
    limits = {"fp32": [], "bf16": []}
    with tempfile.TemporaryDirectory() as output_dir:
        results = [measure_method(name, args, limits, output_dir) for name in methods]
    print(f"Trainer optimizer: {results[0]['trainer_optim']} (peftbench and bare: torch.optim.AdamW's default)")
    print(limit_line(limits, int(args["matmul_size"])))
    print(f"median step times over {results[0]['steps_each']} timed steps each (pb = peftbench):")
    compared = ("fp32", "bf16") if args["precision"] == "bf16" else ("fp32",)
    print("\n".join(table(results, {precision: statistics.median(limits[precision]) for precision in compared})))
    print("per-round medians (ms/step), in round order:")
    print("\n".join(round_lines(results)))
    print(
        f"load average (1 min) {load_at_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; torch threads "
        f"at the end {torch.get_num_threads()}"
    )


if __name__ == "__main__":
    main()
