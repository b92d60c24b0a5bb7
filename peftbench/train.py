"""The training loop and evaluation. Method-specific behaviour enters only through the method's
hooks (`make_optimizer`, `on_step`, `extra_loss`; `on_train_start` runs before, in the recipe, as it decides what
trains)."""

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from peftbench.distributed import summed
from peftbench.formats import Evaluation
from peftbench.measure import SavedActivations, synchronize

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # trainer.precision (validate.PRECISIONS)


def autocast(precision: str, device):
    """The forward passes' precision: fp32 as it is, bf16/fp16 by autocast (weights stay fp32)."""
    dtype = AUTOCAST_DTYPES.get(precision)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def grad_scaler(precision: str, device) -> torch.amp.GradScaler:
    """fp16 gradients underflow without a loss scale; the scaler is off (a pass-through) otherwise."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite: the run stops at that step (trainer.nan_policy=stop)."""

    def __init__(self, value: float, step: int, epoch: int):
        self.step, self.epoch = step, epoch
        super().__init__(
            f"The loss became {value} at step {step} (epoch {epoch}); lower trainer.lr, or set "
            f"trainer.nan_policy=skip to skip such steps."
        )


@dataclass
class TrainResult:
    steps: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    losses: list[float] = field(default_factory=list)  # task loss of every optimizer step
    history: list[dict] = field(default_factory=list)  # one entry per evaluation
    step_seconds: list[float] = field(default_factory=list)  # wall time of every optimizer step
    step_samples: list[int] = field(default_factory=list)
    step_tokens: list[int] = field(default_factory=list)  # real (non-padding) tokens
    batch_positions: int = 0  # token positions of every training batch, padding included
    skipped_steps: int = 0  # batches whose loss was not finite (trainer.nan_policy=skip)
    activation_bytes: int | None = None  # the most any measured step saved for backward (measure.SavedActivations)
    resumed_from_step: int | None = None  # trainer.resume: the saved training state it went on from
    optimizer: torch.optim.Optimizer | None = None  # kept for the memory breakdown
    final: Evaluation | None = None  # the last evaluation, with its predictions

    @property
    def padding_share(self) -> float | None:
        """The share of the training batches' token positions that were padding."""
        return 1 - sum(self.step_tokens) / self.batch_positions if self.batch_positions else None


# What a resumed run restores besides the tensors: everything the record is built from.
RESUMED_FIELDS = (
    "steps",
    "train_seconds",
    "eval_seconds",
    "losses",
    "history",
    "step_seconds",
    "step_samples",
    "step_tokens",
    "batch_positions",
    "skipped_steps",
    "activation_bytes",
)


def save_training_state(
    path: Path,
    model,
    optimizer,
    scheduler,
    result: TrainResult,
    epoch: int,
    batches_done: int,
    epoch_order_state: torch.Tensor,
) -> None:
    """Everything needed to go on from this step as if never stopped, written atomically: the trained
    tensors, the optimizer and schedule, the random state, and where in which epoch's order it was."""
    state = {
        "trainable": {name: p.detach().cpu() for name, p in model.named_parameters() if p.requires_grad},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "epoch": epoch,
        "batches_done": batches_done,
        "epoch_order_state": epoch_order_state,
        "result": {name: getattr(result, name) for name in RESUMED_FIELDS},  # asdict would deep-copy the rest
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def load_training_state(path: Path, model, optimizer, scheduler, result: TrainResult) -> dict:
    state = torch.load(path, weights_only=False)
    model.load_state_dict(state["trainable"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    for name, value in state["result"].items():
        setattr(result, name, value)
    result.resumed_from_step = result.steps
    return state


def total_optimizer_steps(trainer, batches_per_epoch: int) -> int:
    if trainer.max_steps is not None:
        return trainer.max_steps
    return trainer.epochs * math.ceil(batches_per_epoch / trainer.grad_accum_steps)


def make_optimizer(model, trainer, total_steps: int, method=None):
    """AdamW over the trainable parameters, or the method's own optimizer (`Method.make_optimizer`), under the
    same warm-up and linear decay."""
    if method is not None and method.make_optimizer is not None:
        optimizer = method.make_optimizer(model, trainer)
    else:
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=trainer.lr, weight_decay=trainer.weight_decay)
    warmup_steps = int(trainer.warmup_ratio * total_steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)


def to_device(batch: dict, device) -> dict:
    return {key: value.to(device) for key, value in batch.items()}


def no_evaluation(model) -> Evaluation:
    """An evaluation that evaluates nothing: for training loops whose evaluation happens elsewhere or not at all."""
    return Evaluation(metrics={}, predictions=[], labels=[])


def timed_evaluation(model, evaluate, result: TrainResult, precision_context, memory, accelerator) -> Evaluation:
    started = time.perf_counter()
    model.eval()
    with precision_context, memory.phase("evaluation") if memory else contextlib.nullcontext():
        evaluation = evaluate(model)
    if accelerator:
        accelerator.wait_for_everyone()  # the processes that do not evaluate wait here
    model.train()
    result.eval_seconds += time.perf_counter() - started
    return evaluation


def train(
    model,
    method,
    train_loader,
    evaluate: Callable[[torch.nn.Module], Evaluation],
    trainer,
    tracker,
    device,
    state_path: Path | None = None,
    memory=None,
    activation_steps: int = 0,
    accelerator=None,
) -> TrainResult:
    """Optimizer steps over the training batches; `evaluate(model)` (the task format's evaluation on the
    evaluation split) after each epoch, or once at the end. With `state_path`, the training state is
    saved there every `trainer.save_state_every_steps` steps, and `trainer.resume` goes on from it.
    `memory` (a measure.PeakMemory) keeps evaluations' peaks apart; the first `activation_steps` steps
    (the warm-up ones, left out of the step times) measure the bytes saved for backward. With an
    `accelerator` (several processes, distributed.py), each global batch is split across them, gradients
    are averaged by DDP, and `evaluate` runs where the caller put it (process 0) while the others wait."""
    total_steps = total_optimizer_steps(trainer, len(train_loader))
    epochs = math.ceil(total_steps / math.ceil(len(train_loader) / trainer.grad_accum_steps))
    # the forward passes go through DDP's (or FSDP's) wrapper, which averages the gradients; hooks see the
    # model itself. Wrapped first: FSDP replaces the parameters the optimizer must hold.
    trained = accelerator.prepare_model(model) if accelerator else model
    # a method's own optimizer is made on the model itself, as hooks see it: DDP's wrapper holds the same tensors
    if method.make_optimizer and {id(p) for p in trained.parameters()} != {id(p) for p in model.parameters()}:
        raise ValueError(f"Method '{method.name}' makes its own optimizer; FSDP's replaced parameters do not fit it.")
    optimizer, scheduler = make_optimizer(model if method.make_optimizer else trained, trainer, total_steps, method)
    precision = trainer.get("precision", "fp32")
    scaler = grad_scaler(precision, device)
    if trainer.get("compile"):  # torch.compile: the first steps compile (they are warm-up steps), later ones run fused
        trained = torch.compile(trained)
    batches = accelerator.prepare_data_loader(train_loader) if accelerator else train_loader
    result = TrainResult()
    save_every = trainer.get("save_state_every_steps") if state_path is not None else None
    resumed = None
    if state_path is not None and trainer.get("resume") and state_path.is_file():
        resumed = load_training_state(state_path, model, optimizer, scheduler, result)
        print(f"resuming from step {result.steps} ({state_path})", file=sys.stderr)
    model.train()
    # the untuned starting point, as epoch 0 of the history (a resumed run has it already)
    if trainer.get("eval_before_training") and resumed is None:
        evaluation = timed_evaluation(model, evaluate, result, autocast(precision, device), memory, accelerator)
        result.history.append(
            {"epoch": 0, "step": 0, "metrics": evaluation.metrics, "generation": evaluation.generation}
        )
        tracker.log({f"eval/{name}": value for name, value in evaluation.metrics.items()} | {"epoch": 0}, step=0)
    progress = tqdm(total=total_steps, initial=result.steps, desc="train", unit="step", mininterval=2.0)
    first_epoch = resumed["epoch"] if resumed else 1
    for epoch in range(first_epoch, epochs + 1):
        if resumed and epoch == resumed["epoch"]:
            train_loader.generator.set_state(resumed["epoch_order_state"])  # the same order as before the stop
        epoch_order_state = train_loader.generator.get_state()
        skip_batches = resumed["batches_done"] if resumed and epoch == resumed["epoch"] else 0
        started = step_started = time.perf_counter()
        step_samples = step_tokens = 0
        for index, batch in enumerate(batches):
            if index < skip_batches:  # trained before the stop
                continue
            step_samples += len(batch["labels"])
            step_tokens += int(batch["attention_mask"].sum())
            result.batch_positions += batch["attention_mask"].numel()
            saved = SavedActivations(model) if result.steps < activation_steps else None
            with (
                autocast(precision, device),
                saved or contextlib.nullcontext(),
            ):
                loss = trained(**to_device(batch, device)).loss
                extra = method.extra_loss(model)
                total_loss = loss if extra is None else loss + extra
            if saved is not None:
                result.activation_bytes = max(result.activation_bytes or 0, saved.bytes)
            if not torch.isfinite(total_loss.detach()):
                if trainer.nan_policy == "stop":
                    raise NonFiniteLoss(total_loss.item(), result.steps + 1, epoch)
                result.skipped_steps += 1  # skip: this batch's gradients are dropped
                optimizer.zero_grad(set_to_none=True)
                continue
            scaler.scale(total_loss / trainer.grad_accum_steps).backward()
            if (index + 1) % trainer.grad_accum_steps and index + 1 < len(train_loader):
                continue
            if trainer.max_grad_norm is not None:
                scaler.unscale_(optimizer)  # clip the true gradients
                torch.nn.utils.clip_grad_norm_(model.parameters(), trainer.max_grad_norm)
            scaler.step(optimizer)  # fp16: skipped when a gradient overflowed, and the scale lowered
            scaler.update()
            scheduler.step()
            method.on_step(model, result.steps + 1, total_steps)  # gradients are still there
            optimizer.zero_grad(set_to_none=True)
            synchronize(device)
            now = time.perf_counter()
            result.step_seconds.append(now - step_started)
            result.step_samples.append(step_samples)
            result.step_tokens.append(step_tokens)
            step_started, step_samples, step_tokens = now, 0, 0
            result.steps += 1
            loss_value = (accelerator.reduce(loss.detach(), "mean") if accelerator else loss).item()  # global batch
            result.losses.append(loss_value)
            progress.update(1)
            progress.set_postfix(epoch=epoch, loss=f"{loss_value:.4f}", refresh=False)
            if result.steps % trainer.log_every_steps == 0:
                tracker.log({"train/loss": loss_value, "train/lr": scheduler.get_last_lr()[0]}, step=result.steps)
            if save_every and result.steps % save_every == 0:
                result.train_seconds += time.perf_counter() - started  # the time so far goes into the state
                save_training_state(
                    state_path, model, optimizer, scheduler, result, epoch, index + 1, epoch_order_state
                )
                started = step_started = time.perf_counter()
            if result.steps >= total_steps:
                break
        result.train_seconds += time.perf_counter() - started
        if trainer.eval_every_epoch or result.steps >= total_steps:
            result.final = timed_evaluation(model, evaluate, result, autocast(precision, device), memory, accelerator)
            metrics = result.final.metrics
            result.history.append({"epoch": epoch, "step": result.steps, "metrics": metrics})
            tracker.log(
                {f"eval/{name}": value for name, value in metrics.items()} | {"epoch": epoch}, step=result.steps
            )
            progress.write(
                f"epoch {epoch}/{epochs} step {result.steps}: "
                + ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
            )
        if result.steps >= total_steps:
            break
    progress.close()
    result.step_samples = summed(accelerator, result.step_samples)  # the examples of every process
    result.step_tokens = summed(accelerator, result.step_tokens)
    result.batch_positions = sum(summed(accelerator, [result.batch_positions]))
    result.optimizer = optimizer
    return result
