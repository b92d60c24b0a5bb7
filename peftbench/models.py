"""Build the base model and its tokenizer from a model config: pretrained (offline package or hub)
or the architecture from its config numbers with random weights."""

import importlib

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer


def model_source(model_cfg) -> str:
    """The bundled offline copy when its package is installed, else the hub id."""
    if model_cfg.get("local_package"):
        try:
            package = importlib.import_module(model_cfg.local_package)
            return str(package.get_model_path())
        except ImportError:
            pass
    return model_cfg.hub_id


def build_model(model_cfg, num_labels: int):
    """A sequence-classification model with a new head of `num_labels` outputs (1: regression)."""
    head = {"num_labels": num_labels, "problem_type": "regression" if num_labels == 1 else None}
    source = model_source(model_cfg)
    if model_cfg.pretrained:
        model = AutoModelForSequenceClassification.from_pretrained(source, **head)
    else:
        architecture = dict(model_cfg.architecture)
        config = AutoConfig.for_model(architecture.pop("model_type"), **architecture, **head)
        model = AutoModelForSequenceClassification.from_config(config)
    tokenizer = AutoTokenizer.from_pretrained(model_cfg.tokenizer or source)
    return model, tokenizer
