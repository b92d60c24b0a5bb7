"""Build the base model and its tokenizer from a model config: pretrained (offline package or hub)
or the architecture from its config numbers with random weights."""

import importlib
import tempfile

import torch
from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification,
                          AutoTokenizer)

# conf/model/*.yaml `auto_class`: which transformers class builds the model with its head
AUTO_CLASSES = {
    "sequence_classification": AutoModelForSequenceClassification,
    "causal_lm": AutoModelForCausalLM,
    "seq2seq_lm": AutoModelForSeq2SeqLM,
}


def model_source(model_cfg) -> str:
    """The bundled offline copy when its package is installed, else the hub id."""
    if model_cfg.get("local_package"):
        try:
            package = importlib.import_module(model_cfg.local_package)
            return str(package.get_model_path())
        except ImportError:
            pass
    return model_cfg.hub_id


def auto_class(model_cfg):
    name = model_cfg.get("auto_class", "sequence_classification")
    if name not in AUTO_CLASSES:
        raise ValueError(f"Unknown auto_class '{name}' in model '{model_cfg.name}'; valid: {', '.join(AUTO_CLASSES)}.")
    return AUTO_CLASSES[name]


def head_options(num_labels: int) -> dict:
    return {"num_labels": num_labels, "problem_type": "regression" if num_labels == 1 else None}


def architecture_config(model_cfg, num_labels: int):
    """The transformers config built from the model config's numbers (no download)."""
    architecture = dict(model_cfg.architecture)
    return AutoConfig.for_model(architecture.pop("model_type"), **architecture, **head_options(num_labels))


def build_meta_model(model_cfg, num_labels: int = 2):
    """The architecture on the `meta` device: exact parameter shapes, no memory, any size."""
    with torch.device("meta"):
        return auto_class(model_cfg).from_config(architecture_config(model_cfg, num_labels))


def build_model(model_cfg, num_labels: int, load_options: dict | None = None):
    """The model with a new head of `num_labels` outputs (1: regression) and its tokenizer.
    `load_options` go to from_pretrained (e.g. a quantization_config)."""
    source = model_source(model_cfg)
    load_options = load_options or {}
    if model_cfg.pretrained:
        model = auto_class(model_cfg).from_pretrained(source, **head_options(num_labels), **load_options)
    else:
        model = auto_class(model_cfg).from_config(architecture_config(model_cfg, num_labels))
        if load_options:  # options such as quantization apply while loading: load the random weights back
            with tempfile.TemporaryDirectory() as folder:
                model.save_pretrained(folder)
                model = auto_class(model_cfg).from_pretrained(folder, **head_options(num_labels), **load_options)
    tokenizer = AutoTokenizer.from_pretrained(model_cfg.tokenizer or source)
    return model, tokenizer
