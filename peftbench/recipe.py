"""The one run path. Every run (CLI, sweep, test) goes through `run`:

compose cfg -> seed -> build base model -> apply method -> load task data
  -> train (method code only through hooks) -> evaluate -> measure -> record
"""

import time
import traceback
import uuid
from dataclasses import dataclass

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import set_seed

from peftbench import data, records
from peftbench.methods import Arch, get_method
from peftbench.methods.modules import unfreeze_head
from peftbench.metrics import is_better
from peftbench.models import build_model
from peftbench.report_console import print_run_summary
from peftbench.tracking import NoTracker, make_tracker
from peftbench.train import train

COMMON_METHOD_KEYS = ("name", "lr")  # every method config has these; the rest are its options


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def count_parameters(model) -> dict:
    parameters = {id(p): p for p in model.parameters()}.values()  # tied weights count once
    trainable = sum(p.numel() for p in parameters if p.requires_grad)
    total = sum(p.numel() for p in parameters)
    return {"trainable": trainable, "total": total, "trainable_share": trainable / total}


def best_epoch(history: list[dict], main_metric: str) -> dict:
    best = None
    for entry in history:
        if best is None or is_better(main_metric, entry["metrics"][main_metric], best["metrics"][main_metric]):
            best = entry
    return best


@dataclass
class RunOutput:
    record: dict  # what was written to the results store
    model: torch.nn.Module  # the tuned model, for callers that measure or check it further
    losses: list[float]  # task loss of every optimizer step


def run(cfg: DictConfig) -> RunOutput:
    """Fine-tune and evaluate one configuration; writes its record and returns it with the model."""
    started, wall_start = records.utc_now(), time.perf_counter()
    config = OmegaConf.to_container(cfg, resolve=True)
    config_hash = records.config_hash(config)
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{config_hash}-seed{cfg.seed}-{uuid.uuid4().hex[:6]}"
    device = resolve_device(cfg.device)
    record = {
        "schema_version": records.SCHEMA_VERSION,
        "status": "running",
        "run": {"id": run_id, "task": cfg.task.name, "model": cfg.model.name, "method": cfg.method.name,
                "seed": cfg.seed, "config_hash": config_hash, "started_at": started},
        "config": config,
    }
    path = records.record_path(cfg.results_dir, config, run_id)
    tracker = NoTracker()
    try:
        method = get_method(cfg.method.name)
        method_cfg = method.make_config({k: v for k, v in config["method"].items() if k not in COMMON_METHOD_KEYS})
        if cfg.num_threads is not None:
            torch.set_num_threads(int(cfg.num_threads))
        set_seed(cfg.seed)

        model, tokenizer = build_model(cfg.model, data.num_labels(cfg.task))
        arch = Arch(modules=dict(cfg.model.modules), head=tuple(cfg.model.head))
        model = method.apply(model, method_cfg, arch)
        unfreeze_head(model, arch)
        model.to(device)
        record["params"] = count_parameters(model)

        splits = data.load_task(cfg.task, cfg.data_dir, cfg.seed)
        features = {name: data.tokenize(examples, tokenizer, cfg.trainer.max_seq_length) for name, examples in splits.items()}
        train_loader = data.make_loader(features["train"], tokenizer, cfg.trainer.batch_size, shuffle=True, seed=cfg.seed)
        eval_loader = data.make_loader(features["validation"], tokenizer, cfg.trainer.eval_batch_size, shuffle=False, seed=cfg.seed)
        record["data"] = {"train_examples": len(splits["train"]), "eval_examples": len(splits["validation"]),
                          "source": cfg.data_dir or "hub"}

        tracker = make_tracker(cfg.tracker, config, name=run_id)
        result = train(model, method, train_loader, eval_loader, cfg.task, cfg.trainer, tracker, device)

        best = best_epoch(result.history, cfg.task.main_metric)
        record["metrics"] = {
            "main_metric": cfg.task.main_metric,
            "final": result.history[-1]["metrics"],
            "best": best["metrics"],
            "best_epoch": best["epoch"],
            "history": result.history,
            "first_loss": result.losses[0],
            "last_loss": result.losses[-1],
        }
        record["time"] = {"wall_seconds": time.perf_counter() - wall_start, "train_seconds": result.train_seconds,
                          "eval_seconds": result.eval_seconds, "train_steps": result.steps}
        record["provenance"] = records.provenance(device)
        record["status"] = "ok"
        record["run"]["finished_at"] = records.utc_now()
        tracker.summary(summary_values(record))
        tracker.finish()
    except BaseException as error:
        record["status"] = "failed"
        record["error"] = {"type": type(error).__name__, "message": str(error), "traceback": traceback.format_exc()}
        record["run"]["finished_at"] = records.utc_now()
        record.setdefault("provenance", records.provenance(device))
        tracker.finish(failed=True)
        records.write_record(record, path)
        raise
    records.write_record(record, path)
    record["path"] = str(path)
    print_run_summary(record)
    return RunOutput(record=record, model=model, losses=result.losses)


def summary_values(record: dict) -> dict:
    metrics = record["metrics"]
    return {
        **{f"final/{k}": v for k, v in metrics["final"].items()},
        **{f"best/{k}": v for k, v in metrics["best"].items()},
        **{f"params/{k}": v for k, v in record["params"].items()},
        **{f"time/{k}": v for k, v in record["time"].items()},
        "config_hash": record["run"]["config_hash"],
    }
