"""The one run path. Every run (CLI, sweep, test) goes through `run`:

compose cfg -> seed -> build base model -> apply method -> load task data
  -> train (method code only through hooks) -> evaluate -> measure -> record
"""

import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import set_seed

from peftbench import checkpoints, data, measure, records
from peftbench.budget import BudgetError, solve_budget
from peftbench.distributed import is_main_process, make_accelerator, world_size
from peftbench.formats import EvalSetup
from peftbench.hub_models import complete_model_config
from peftbench.methods import get_method
from peftbench.methods.modules import head_parameters
from peftbench.metrics import is_better, unavailable_metrics
from peftbench.models import build_weights, enable_gradient_checkpointing
from peftbench.plan import RunPlan, apply_method, build_base, plan_run
from peftbench.report.console import print_run_summary
from peftbench.tracking import NoTracker, make_tracker, summary_values
from peftbench.train import NonFiniteLoss, no_evaluation, total_optimizer_steps, train
from peftbench.validate import ConfigError, validate


def load_data(plan: RunPlan, splits: data.Splits, tokenizer, device: torch.device):
    """The training loader, the evaluation (model -> Evaluation) on the evaluation split, and what the
    record says about the data."""
    cfg, form = plan.cfg, plan.format
    identity = data.identity(cfg.task, cfg.data_dir)
    features, lengths = data.train_features(splits, form.features, form.name, tokenizer, plan.max_length, identity)
    train_loader = data.make_loader(
        features,
        form.collate(tokenizer),
        cfg.trainer.batch_size,
        shuffle=True,
        seed=cfg.seed,
        group_by_length=cfg.trainer.group_by_length,
        lengths=lengths,
    )

    setup = EvalSetup(tokenizer, cfg.task, plan.max_length, cfg.trainer.eval_batch_size, device)

    def evaluate(model):
        return form.evaluate(model, splits.validation, setup)

    info = {
        "train_examples": splits.train_size,
        "eval_examples": len(splits.validation),
        "source": cfg.data_dir or "hub",
        "eval_split": eval_split(cfg.task),
        "format": form.name,
    }
    if cfg.data_dir and cfg.task.local.get("note"):
        info["note"] = cfg.task.local.note  # e.g. E2E offline: trains on the official dev set, evaluates on test
    if not cfg.data_dir and cfg.task.hub.get("splits"):
        info["splits"] = dict(cfg.task.hub.splits)
    return train_loader, evaluate, info


def model_for_training(plan: RunPlan, device: torch.device):
    """The base with the method on it, on the device, as it trains; the ids of the base's own parameters;
    the tokenizer."""
    model, tokenizer = build_base(plan)
    base_parameter_ids = {id(p) for p in model.parameters()}
    model = apply_method(model, plan).to(device)
    if plan.cfg.trainer.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    return model, base_parameter_ids, tokenizer


def train_as_another_process(plan: RunPlan, device: torch.device) -> "RunOutput":
    """A process other than the first of a run on several (distributed.py): it trains on its share of
    every batch, evaluates nothing, and writes nothing."""
    cfg = plan.cfg
    if cfg.num_threads is not None:
        torch.set_num_threads(int(cfg.num_threads))
    set_seed(cfg.seed)
    splits = data.load_task(cfg.task, cfg.data_dir, cfg.seed)
    model, _, tokenizer = model_for_training(plan, device)
    train_loader, _, _ = load_data(plan, splits, tokenizer, device)
    plan.method.on_train_start(model, total_optimizer_steps(cfg.trainer, len(train_loader)), train_loader)
    accelerator = make_accelerator(device)

    result = train(  # the first process evaluates on the whole evaluation set
        model, plan.method, train_loader, no_evaluation, cfg.trainer, NoTracker(), device, accelerator=accelerator
    )
    return RunOutput(record=None, model=model, losses=result.losses)


def model_facts(model, cfg: DictConfig) -> dict:
    """What ran, as the model says: pretrained or random weights, the attention kernels, the dtypes."""
    dtypes: dict[str, dict[str, int]] = {"trainable": {}, "frozen": {}}
    for parameter in {id(p): p for p in model.parameters()}.values():
        group = dtypes["trainable" if parameter.requires_grad else "frozen"]
        name = str(parameter.dtype).removeprefix("torch.")
        group[name] = group.get(name, 0) + parameter.numel()
    return {
        "weights": "pretrained" if cfg.model.pretrained else "random",
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "parameter_dtypes": dtypes,
    }


def eval_split(task) -> str:
    if task.get("heldout_fraction"):
        return "heldout_from_train"
    return task.get("eval_split") or "dev"


def metrics_section(result, main_metric: str) -> dict:
    """Final and best evaluation (by the metric's declared direction), with the per-epoch history."""
    tuned = [entry for entry in result.history if entry["epoch"] > 0]  # epoch 0: the untuned model, if evaluated
    best = tuned[0]
    for entry in tuned[1:]:
        if is_better(main_metric, entry["metrics"][main_metric], best["metrics"][main_metric]):
            best = entry
    losses = result.losses or [None]  # every batch skipped (nan_policy=skip): no loss to report
    untuned = result.history[0] if result.history[0]["epoch"] == 0 else None  # trainer.eval_before_training
    return {
        "main_metric": main_metric,
        "final": result.history[-1]["metrics"],
        "best": best["metrics"],
        "best_epoch": best["epoch"],
        "history": result.history,
        "first_loss": losses[0],
        "before_training": untuned and untuned["metrics"],
        "last_loss": losses[-1],
        "loss_curve": loss_curve(result.losses),
    }


LOSS_CURVE_POINTS = 20


def loss_curve(losses: list[float], points: int = LOSS_CURVE_POINTS) -> list[float]:
    """The training loss as the means of (at most) `points` consecutive, near-equal windows of steps: the
    shape of the run, without one batch's noise deciding where it started or ended."""
    points = min(points, len(losses))
    if not points:
        return []  # every batch skipped (nan_policy=skip)
    bounds = [round(i * len(losses) / points) for i in range(points + 1)]
    return [sum(losses[a:b]) / (b - a) for a, b in zip(bounds, bounds[1:])]


class Phases:
    """Wall seconds of each part of a run, in order (record.time.phases): where its fixed costs go."""

    def __init__(self):
        self.seconds, self.last = {}, time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self.last
        self.last = now


def seconds_since_process_start() -> float:
    """Imports and config composition before the run (meaningful for the CLI's own process)."""
    import psutil

    return time.time() - psutil.Process().create_time()


@dataclass
class RunOutput:
    record: dict | None  # what was written to the results store (None: not the first of several processes)
    model: torch.nn.Module | None  # the tuned model (None when skipped), for callers that check it further
    losses: list[float]  # task loss of every optimizer step
    skipped: bool = False  # an ok record of the same configuration existed; nothing ran


class RunInterrupted(BaseException):
    """SIGTERM or SIGINT (a SLURM pre-emption, Ctrl-C) during a run: it stops with an `interrupted` record
    that keeps the signal as its error, as a killed run reads; nothing about the configuration failed."""


@contextmanager
def signals_as_interruptions():
    """SIGTERM and SIGINT raise RunInterrupted in the run (signal handlers live in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise RunInterrupted(f"The run was interrupted by {signal.Signals(signum).name}.")

    previous = {number: signal.signal(number, interrupt) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def error_section(error: BaseException) -> dict:
    section = {"type": type(error).__name__, "message": str(error) or repr(error), "traceback": traceback.format_exc()}
    if isinstance(error, NonFiniteLoss):
        section |= {"step": error.step, "epoch": error.epoch}
    return section


def resume_state_path(cfg: DictConfig, config_hash: str) -> Path:
    """Where a run saves its training state to resume from (trainer.save_state_every_steps)."""
    return Path(cfg.results_dir) / ".resume" / f"{config_hash}-seed{cfg.seed}.pt"


def new_record(cfg: DictConfig, config: dict, config_hash: str, started: str, status: str) -> dict:
    """A record's opening: what runs, and since when."""
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{config_hash}-seed{cfg.seed}-{uuid.uuid4().hex[:6]}"
    return {
        "schema_version": records.SCHEMA_VERSION,
        "status": status,
        "run": {
            "id": run_id,
            "task": cfg.task.name,
            "model": cfg.model.name,
            "method": cfg.method.name,
            "seed": cfg.seed,
            "config_hash": config_hash,
            "started_at": started,
        },
        "config": config,
    }


def record_refusal(cfg: DictConfig, error: Exception, started: str) -> None:
    """A failed record for a config refused before any work, where its folder can be written."""
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
        config_hash = records.config_hash(config, data.identity(cfg.task, cfg.data_dir))
        record = new_record(cfg, config, config_hash, started, "failed")
        record["run"]["finished_at"] = records.utc_now()
        record |= {"error": error_section(error), "provenance": records.provenance(None)}
        records.write_record(record, records.record_path(cfg.results_dir, config, record["run"]["id"]))
    except Exception as unrecorded:  # noqa: BLE001 - the refusal itself is what the caller reports
        print(f"warning: the refused run could not be recorded ({unrecorded})", file=sys.stderr)


def run(cfg: DictConfig) -> RunOutput:
    """Fine-tune and evaluate one configuration; writes its record and returns it with the model.
    A bad config fails before any work (ConfigError); from the start of the work on, the record is on
    disk: `running` while it runs (a killed or signalled run reads as `interrupted`), then `ok` or `failed`."""
    started, wall_start = records.utc_now(), time.perf_counter()
    before_run, phases = seconds_since_process_start(), Phases()
    try:
        cfg.model = complete_model_config(cfg.model)  # model=hf: the numbers and roles from its config.json
        device = validate(cfg)
        cfg, budget = solve_budget(cfg)  # a budget sets the method's size knob before anything runs
        plan = plan_run(cfg, get_method(cfg.method.name))
    except (ConfigError, BudgetError) as error:
        record_refusal(cfg, error, started)  # a sweep's job that was refused shows in the store
        raise
    config = OmegaConf.to_container(cfg, resolve=True)
    data_identity = data.identity(cfg.task, cfg.data_dir)
    config_hash = records.config_hash(config, data_identity)
    if not cfg.force and (existing := records.find_ok_record(cfg.results_dir, config, config_hash)):
        print(
            f"skipping: an ok record of this configuration exists ({existing['path']}); force=true re-runs it",
            file=sys.stderr,
        )
        return RunOutput(record=existing, model=None, losses=[], skipped=True)
    if not is_main_process():  # a run on several processes: only the first one records
        return train_as_another_process(plan, device)
    records.check_writable(records.record_folder(cfg.results_dir, config), "results folder")
    if cfg.checkpoint_dir:
        records.check_writable(cfg.checkpoint_dir, "checkpoint folder")
    records.mark_interrupted(cfg.results_dir, config, config_hash)
    method = plan.method
    record = new_record(cfg, config, config_hash, started, "running") | {"budget": budget}
    record["run"] |= {"method_family": method.family, "process": records.this_process(), "processes": world_size()}
    run_id = record["run"]["id"]
    path = records.write_record(record, records.record_path(cfg.results_dir, config, run_id))
    state_path = resume_state_path(cfg, config_hash)
    tracker, peak_memory = NoTracker(), None
    try:
        with signals_as_interruptions():
            if cfg.num_threads is not None:
                torch.set_num_threads(int(cfg.num_threads))
            set_seed(cfg.seed)
            phases.done("setup")  # validation, budget, plan, the running record
            splits = data.load_task(cfg.task, cfg.data_dir, cfg.seed)  # bad data fails before the model is built
            phases.done("data_read")

            peak_memory = measure.PeakMemory(device).start()  # the level before the model is built
            model, base_parameter_ids, tokenizer = model_for_training(plan, device)
            record["run"] |= model_facts(model, cfg)
            phases.done("model_build")
            train_loader, evaluate, record["data"] = load_data(plan, splits, tokenizer, device)
            phases.done("tokenize")
            record["data"]["fingerprint"] = data_identity
            # data-dependent choices of what trains (FishMask's Fisher mask, FAR's nodes) happen here
            method.on_train_start(model, total_optimizer_steps(cfg.trainer, len(train_loader)), train_loader)
            checkpoints.remember_initial_adapter(model)  # PiSSA/OLoRA/CorDA: to save an adapter on the original base
            accelerator = make_accelerator(device)  # several processes launched: the others wait here for it
            head_ids = {id(p) for p in head_parameters(model, plan.arch)}
            record["params"] = measure.parameter_split(model, base_parameter_ids, head_ids)

            tracker = make_tracker(cfg.tracker, config, name=run_id)
            phases.done("method_start")  # on_train_start, the parameter split, the tracker
            result = train(
                model,
                method,
                train_loader,
                evaluate,
                cfg.trainer,
                tracker,
                device,
                state_path,
                memory=peak_memory,
                activation_steps=cfg.measure.warmup_steps,
                accelerator=accelerator,
            )
            phases.done("train_and_evaluate")
            record["params"] |= stored_parameters(model, method, record["params"])
            record["method_state"] = method.report(model) if method.report else None
            breakdown = measure.memory_breakdown(model, result.optimizer)
            record["memory"] = measure.memory_record(peak_memory.stop(), breakdown, result.activation_bytes)
            peak_memory, result.optimizer = None, None  # the optimizer state goes before the inference measurements

            record["metrics"] = metrics_section(result, cfg.task.main_metric)
            # the final evaluation per example, for paired significance tests in reports
            record["predictions"] = {"predictions": result.final.predictions, "labels": result.final.labels}
            record["metrics"]["generation"] = result.final.generation  # generation tasks: ms per generated token
            if unavailable := unavailable_metrics(cfg.task.metrics):
                record["metrics"]["unavailable"] = unavailable
            record["throughput"] = measure.throughput(
                result.step_seconds, result.step_samples, result.step_tokens, cfg.measure.warmup_steps
            )
            record["throughput"] |= {"precision": cfg.trainer.precision, "padding_share": result.padding_share}
            phases.done("memory_and_metrics")
            base = fresh_base(plan, device)  # for the base latency and the loss before tuning
            record["latency"] = measure_inference(plan, model, base, device)
            phases.done("latency")
            record["metrics"]["forgetting"] = measure_forgetting(plan, model, base, tokenizer, device)
            del base
            phases.done("forgetting")
            record["checkpoint"] = save_checkpoint(cfg.checkpoint_dir, run_id, model, plan, config)
            phases.done("checkpoint")
            record["time"] = {
                "wall_seconds": time.perf_counter() - wall_start,
                "train_seconds": result.train_seconds,
                "eval_seconds": result.eval_seconds,
                "train_steps": result.steps,
                "skipped_steps": result.skipped_steps,
                "resumed_from_step": result.resumed_from_step,
                "before_run_seconds": before_run,
                "phases": phases.seconds,
            }
            record["provenance"] = records.provenance(device)
            record["status"] = "ok"
            record["run"]["finished_at"] = records.utc_now()
            tracker.summary(summary_values(record))
            tracker.finish()
    except BaseException as error:
        record["status"] = "interrupted" if isinstance(error, RunInterrupted) else "failed"
        record["error"] = error_section(error)
        record["run"]["finished_at"] = records.utc_now()
        record.setdefault("provenance", records.provenance(device))
        if peak_memory is not None:
            peak_memory.stop()  # ends the sampling thread
        try:
            tracker.finish(failed=True)
        finally:
            records.write_record(record, path)
        raise
    records.write_record(record, path)
    state_path.unlink(missing_ok=True)  # finished: nothing to resume
    record["path"] = str(path)
    print_run_summary(record)
    return RunOutput(record=record, model=model, losses=result.losses)


def fresh_base(plan: RunPlan, device: torch.device):
    """The base model as users load it: no method, not quantized, on the device (a random base rebuilt from the
    run's seed, so it is the one the run started from)."""
    if not plan.cfg.model.pretrained:
        set_seed(plan.cfg.seed)
    return build_weights(plan.cfg.model, plan.num_labels).to(device)


def measure_inference(plan: RunPlan, model, base, device: torch.device) -> dict:
    """Latency of the base model without the method, with it, and merged where the method can be."""
    cfg, method, m = plan.cfg, plan.method, plan.cfg.measure
    batch = measure.latency_batch(model, m.latency_batch_size, m.latency_seq_length, seed=cfg.seed)
    timing = dict(
        device=device, warmup=m.latency_warmup, repeats=m.latency_repeats, min_warmup_seconds=m.latency_warmup_seconds
    )
    base_latency = measure.latency(base, batch, **timing)
    with_method = measure.latency(model, batch, **timing)
    result = {
        "batch_size": m.latency_batch_size,
        "seq_length": m.latency_seq_length,
        "base": base_latency,
        "method": {
            **with_method,
            "overhead_pct": measure.overhead_pct(with_method["median_ms"], base_latency["median_ms"]),
        },
    }
    if not method.mergeable:
        return {
            **result,
            "merged": None,
            "merge_check": {"reason": f"{method.name} has no weights to merge into the base"},
        }
    merged = measure.merged_copy(model, method)
    merged_latency = measure.latency(merged, batch, **timing)
    check = measure.merge_check(
        measure.outputs(model, batch, device), measure.outputs(merged, batch, device), m.merge_tolerance
    )
    if not check["equivalent"]:
        check["reason"] = (
            f"merged outputs differ from unmerged by {check['max_abs_diff']:.3g} > {check['allowed_abs_diff']:.3g}"
        )
    return {
        **result,
        "merge_check": check,
        "merged": {
            **merged_latency,
            "overhead_pct": measure.overhead_pct(merged_latency["median_ms"], base_latency["median_ms"]),
        },
    }


def measure_forgetting(plan: RunPlan, model, base, tokenizer, device: torch.device) -> dict | None:
    """Language-model runs: the loss on held-out general text (texts/general.txt) of the base model as loaded
    ("before") and of the tuned model ("after"); None for other formats or measure.forgetting_tokens=null."""
    tokens = plan.cfg.measure.get("forgetting_tokens")
    if plan.format.name != "causal_lm" or not tokens:
        return None
    ids = measure.general_text_ids(tokenizer, tokens)
    before, after = (measure.general_text_loss(m, ids, device) for m in (base, model))
    return {
        "text": "texts/general.txt (Python 3.11 language reference topics, PSF licence)",
        "tokens": after["tokens"],
        "loss_before": before["loss"],
        "loss_after": after["loss"],
        "increase": after["loss"] - before["loss"],
    }


def stored_parameters(model, method, params: dict) -> dict:
    """How many numbers restore the tuned model on its base: fewer than were trained where a
    training-only part is dropped (prefix MLP, P-tuning encoder) or the result is sparse (DiffPruning)."""
    stored = method.stored_parameters(model) if method.stored_parameters else params["trainable"]
    return {"stored_after_training": stored, "stored_share": stored / params["total"]}


def save_checkpoint(checkpoint_dir: str | None, run_id: str, model, plan: RunPlan, config: dict) -> dict:
    """The checkpoint folder that `peftbench.load` rebuilds the tuned model from (checkpoints.py), and its
    bytes; with checkpoint_dir=null it is written to a temporary folder, measured and dropped."""
    if checkpoint_dir:
        return checkpoints.save(model, plan, config, Path(checkpoint_dir) / run_id)
    with tempfile.TemporaryDirectory() as folder:
        return checkpoints.save(model, plan, config, Path(folder)) | {"path": None}
