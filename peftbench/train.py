"""The training loop and evaluation. Method-specific behaviour enters only through the method's
hooks (`on_step`, `extra_loss`; `on_train_start` runs before, in the recipe, as it decides what trains)."""

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from peftbench.formats import Evaluation
from peftbench.measure import synchronize


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
    optimizer: torch.optim.Optimizer | None = None  # kept for the memory breakdown
    final: Evaluation | None = None  # the last evaluation, with its predictions


def total_optimizer_steps(trainer, batches_per_epoch: int) -> int:
    if trainer.max_steps is not None:
        return trainer.max_steps
    return trainer.epochs * math.ceil(batches_per_epoch / trainer.grad_accum_steps)


def make_optimizer(model, trainer, total_steps: int):
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=trainer.lr, weight_decay=trainer.weight_decay)
    warmup_steps = int(trainer.warmup_ratio * total_steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)


def to_device(batch: dict, device) -> dict:
    return {key: value.to(device) for key, value in batch.items()}


def timed_evaluation(model, evaluate, result: TrainResult) -> Evaluation:
    started = time.perf_counter()
    model.eval()
    evaluation = evaluate(model)
    model.train()
    result.eval_seconds += time.perf_counter() - started
    return evaluation


def train(model, method, train_loader, evaluate: Callable[[torch.nn.Module], Evaluation], trainer, tracker, device) -> TrainResult:
    """Optimizer steps over the training batches; `evaluate(model)` (the task format's evaluation on the
    evaluation split) after each epoch, or once at the end."""
    total_steps = total_optimizer_steps(trainer, len(train_loader))
    epochs = math.ceil(total_steps / math.ceil(len(train_loader) / trainer.grad_accum_steps))
    optimizer, scheduler = make_optimizer(model, trainer, total_steps)
    result = TrainResult()
    model.train()
    if trainer.get("eval_before_training"):  # the untuned starting point, as epoch 0 of the history
        evaluation = timed_evaluation(model, evaluate, result)
        result.history.append({"epoch": 0, "step": 0, "metrics": evaluation.metrics, "generation": evaluation.generation})
        tracker.log({f"eval/{name}": value for name, value in evaluation.metrics.items()} | {"epoch": 0}, step=0)
    progress = tqdm(total=total_steps, desc="train", unit="step", mininterval=2.0)
    for epoch in range(1, epochs + 1):
        started = step_started = time.perf_counter()
        step_samples = step_tokens = 0
        for index, batch in enumerate(train_loader):
            step_samples += len(batch["labels"])
            step_tokens += int(batch["attention_mask"].sum())
            loss = model(**to_device(batch, device)).loss
            extra = method.extra_loss(model)
            total_loss = loss if extra is None else loss + extra
            (total_loss / trainer.grad_accum_steps).backward()
            if (index + 1) % trainer.grad_accum_steps and index + 1 < len(train_loader):
                continue
            if trainer.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), trainer.max_grad_norm)
            optimizer.step()
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
            result.losses.append(loss.item())
            progress.update(1)
            progress.set_postfix(epoch=epoch, loss=f"{loss.item():.4f}", refresh=False)
            if result.steps % trainer.log_every_steps == 0:
                tracker.log({"train/loss": loss.item(), "train/lr": scheduler.get_last_lr()[0]}, step=result.steps)
            if result.steps >= total_steps:
                break
        result.train_seconds += time.perf_counter() - started
        if trainer.eval_every_epoch or result.steps >= total_steps:
            result.final = timed_evaluation(model, evaluate, result)
            metrics = result.final.metrics
            result.history.append({"epoch": epoch, "step": result.steps, "metrics": metrics})
            tracker.log({f"eval/{name}": value for name, value in metrics.items()} | {"epoch": epoch}, step=result.steps)
            progress.write(f"epoch {epoch}/{epochs} step {result.steps}: "
                           + ", ".join(f"{name} {value:.4f}" for name, value in metrics.items()))
        if result.steps >= total_steps:
            break
    progress.close()
    result.optimizer = optimizer
    return result
