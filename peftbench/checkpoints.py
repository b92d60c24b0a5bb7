"""Checkpoints that load: what a run saves, and `load` that rebuilds the tuned model from it.

A checkpoint is a folder:
- `peftbench.json`: the run's resolved config (what base, method and task it was) and what each file is;
- methods peft implements: peft's own `save_pretrained` files (adapter_config.json and
  adapter_model.safetensors, loadable with `peft.PeftModel.from_pretrained` on the base model), and
  `head.safetensors` with the trained tensors peft does not save (the new classification head);
- native methods: `trainable.safetensors`, the method's saved state (the trained tensors, with the
  indices of a sparse selection), loaded into the base with the method applied.

    from peftbench import load
    tuned = load("checkpoints/<run id>")          # or a record (its dict or its JSON file)
    tuned.model(**tuned.tokenizer("a fine film", return_tensors="pt"))
"""

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import peft
import torch
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import load_file, save_file
from transformers import set_seed

from peftbench.measure import trainable_state
from peftbench.methods.modules import head_parameters
from peftbench.plan import RunPlan, apply_method, build_base, plan_run

DESCRIPTION = "peftbench.json"
NATIVE_FILE = "trainable.safetensors"
FORMAT_VERSION = 1
# LoRA initialisations that rewrite the base weights: the saved adapter is converted to one that applies
# to the original base (peft's path_initial_model_for_weight_conversion; its rank doubles).
BASE_REWRITING_INITS = ("pissa", "olora", "corda")
INITIAL_ADAPTER = "_peftbench_initial_adapter"  # attribute holding the adapter as it was before training


@dataclass
class Tuned:
    model: torch.nn.Module  # in eval mode
    tokenizer: object
    plan: RunPlan
    folder: Path


def is_peft(model) -> bool:
    return isinstance(model, peft.PeftModel)


def rewrites_base(model) -> bool:
    init = getattr(model.peft_config.get("default"), "init_lora_weights", True) if is_peft(model) else True
    return isinstance(init, str) and init.startswith(BASE_REWRITING_INITS)


def remember_initial_adapter(model) -> None:
    """Before training, for inits that rewrite the base (PiSSA, OLoRA, CorDA): keep the initial adapter, which
    converts the trained one into an adapter on the original base when it is saved."""
    if rewrites_base(model):
        state = peft.get_peft_model_state_dict(model)
        setattr(model, INITIAL_ADAPTER, {name: tensor.detach().clone().cpu() for name, tensor in state.items()})


def file_bytes(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_size for path in sorted(folder.iterdir()) if path.is_file()}


def outside_adapter(model) -> dict[str, torch.nn.Parameter]:
    """A peft model's trained parameters that are not its adapter's (named with the adapter's name)."""
    adapters = set(model.peft_config)
    return {n: p for n, p in model.named_parameters() if p.requires_grad and not adapters & set(n.split("."))}


def save_peft(model, folder: Path) -> dict:
    """peft's own files, converted for the original base where the init rewrote it, and the head."""
    initial = getattr(model, INITIAL_ADAPTER, None)
    if initial is None:
        model.save_pretrained(folder)
    else:
        with tempfile.TemporaryDirectory() as before:
            config = model.peft_config["default"]
            rewriting, config.init_lora_weights = config.init_lora_weights, True  # peft's documented conversion
            try:
                config.save_pretrained(before)
            finally:
                config.init_lora_weights = rewriting
            save_file(initial, str(Path(before) / "adapter_model.safetensors"))
            model.save_pretrained(folder, path_initial_model_for_weight_conversion=before)
        keep_trained_magnitudes(model, folder / "adapter_model.safetensors")
    (folder / "README.md").unlink(missing_ok=True)  # peft's model card template: nothing that loads
    if head := {name: p.detach().contiguous().cpu() for name, p in outside_adapter(model).items()}:
        save_file(head, str(folder / "head.safetensors"))
    return {"kind": "peft", "converted_for_original_base": initial is not None}


def keep_trained_magnitudes(model, adapter_file: Path) -> None:
    """DoRA's trained magnitudes, which peft 0.21's conversion for the original base leaves out of the file (its
    subtract_mutated_init returns only A and B): without them the loaded model recomputes fresh ones."""
    saved = load_file(str(adapter_file))
    state = peft.get_peft_model_state_dict(model)
    missing = {name: t.detach().contiguous().cpu() for name, t in state.items() if name not in saved}
    if missing:
        save_file(saved | missing, str(adapter_file))


def save(model, plan: RunPlan, config: dict, folder: Path) -> dict:
    """Write the checkpoint folder; returns the record's section: format, total bytes, files, path. A peft
    model whose only other trained part is the task head saves as peft does; a hybrid of peft and native
    parts (UniPELT) saves like a native method."""
    method = plan.method
    folder.mkdir(parents=True, exist_ok=True)
    head = {id(p) for p in head_parameters(model, plan.arch)}
    if is_peft(model) and all(id(p) in head for p in outside_adapter(model).values()):
        description = save_peft(model, folder)
    else:
        state = method.saved_state(model) if method.saved_state else trainable_state(model)
        save_file({name: t.detach().contiguous().cpu() for name, t in state.items()}, str(folder / NATIVE_FILE))
        description = {"kind": "native"}
    description = {"format_version": FORMAT_VERSION, "method": method.name, **description, "config": config}
    (folder / DESCRIPTION).write_text(json.dumps(description, indent=1, sort_keys=True, default=str), encoding="utf-8")
    files = file_bytes(folder)
    return {"format": description["kind"], "bytes": sum(files.values()), "files": files, "path": str(folder)}


def checkpoint_folder(source) -> Path:
    """A checkpoint folder from a folder, a record's JSON file or a record."""
    if isinstance(source, dict):
        path = (source.get("checkpoint") or {}).get("path")
        if not path:
            raise ValueError("The record has no checkpoint folder (the run had checkpoint_dir=null).")
        return Path(path)
    source = Path(source)
    if source.is_file() and source.suffix == ".json" and source.name != DESCRIPTION:
        return checkpoint_folder(json.loads(source.read_text(encoding="utf-8")))
    if source.is_file():
        source = source.parent
    if not (source / DESCRIPTION).is_file():
        raise FileNotFoundError(f"'{source}' is not a peftbench checkpoint: it has no {DESCRIPTION}.")
    return source


def load_tensors(model, path: Path) -> None:
    """Saved tensors into the model, by name; modules sized by training resize as they load."""
    state = load_file(str(path))
    known = {name for name, _ in model.named_parameters()} | {name for name, _ in model.named_buffers()}
    if missing := sorted(set(state) - known):
        raise ValueError(f"Checkpoint {path} has tensors the model lacks: {', '.join(missing[:5])}.")
    model.load_state_dict(state, strict=False)


def run_config(description: dict) -> DictConfig:
    cfg = OmegaConf.create(description["config"])
    cfg.trainer.gradient_checkpointing = False  # inference
    return cfg


def load(source, device: str | torch.device = "cpu") -> Tuned:
    """The tuned model of a checkpoint folder or a record, on its base, in eval mode, with its tokenizer."""
    from peftbench.methods import get_method

    folder = checkpoint_folder(source)
    description = json.loads((folder / DESCRIPTION).read_text(encoding="utf-8"))
    cfg = run_config(description)
    plan = plan_run(cfg, get_method(description["method"]))
    set_seed(cfg.seed)  # a random base (model.pretrained=false) is defined by its seed, as in the run
    base, tokenizer = build_base(plan)
    if description["kind"] == "peft":
        model = peft.PeftModel.from_pretrained(base, folder)
        if plan.method.on_load:
            plan.method.on_load(model, plan.method_config)
        if (folder / "head.safetensors").is_file():
            load_tensors(model, folder / "head.safetensors")
    else:
        model = apply_method(base, plan)
        load_tensors(model, folder / NATIVE_FILE)
    return Tuned(model.to(device).eval(), tokenizer, plan, folder)
