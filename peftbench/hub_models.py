"""Any model by name: `model=hf model.hub_id=<hub id or local folder>` (conf/model/hf.yaml) becomes a full
model config from the model's own config.json and the table of model types below:

    python -m peftbench +method=lora +task=rte model=hf model.hub_id=FacebookAI/roberta-base

`complete_model_config` fills a model config that sets `from_config_json: true`: `architecture` from
config.json (a local folder's file, or the HF cache's copy of a hub model; offline, only a model downloaded
before), `auto_class`, `modules` (where each role lives) and `head` from MODEL_TYPES, and `name` from the
hub id. What the config or the command line sets wins: a given `auto_class`, `modules` or `head` is used
as given, `architecture` entries replace config.json's, and a `name` other than `hf` is kept."""

import re
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from peftbench.validate import OFFLINE_MODELS, ConfigError

# transformers and peftbench.models (torch) are imported where a config.json is read: the command line's
# checks of a config without `from_config_json` answer before they load
AUTO_CLASS_NAMES = ("sequence_classification", "causal_lm", "seq2seq_lm")  # models.AUTO_CLASSES' keys

PLACEHOLDER_NAME = "hf"  # conf/model/hf.yaml's name: replaced by one derived from the hub id


@dataclass(frozen=True)
class ModelType:
    """What peftbench needs to know about a transformers model type beyond its config.json."""

    auto_class: str  # the usual one: a classifier, a causal LM or a seq2seq LM
    modules: dict[str, str]  # role -> regular expression matched against the end of module names
    heads: dict[str, tuple[str, ...]]  # auto_class -> the head's module names (new, or the output layer)


# Regexes copied from conf/model/*.yaml (bert_base, roberta_base, deberta_v3_base, gpt2_medium, llama_7b,
# t5_base, bart_large); tests/test_hub_models.py checks each against a tiny model of its type.
BERT_MODULES = {
    "q": "query",
    "k": "key",
    "v": "value",
    "attn_out": "attention\\.output\\.dense",
    "ffn_in": "intermediate\\.dense",
    "ffn_out": "layer\\.\\d+\\.output\\.dense",  # the FFN output, not the attention output (nor classifier.dense)
}
DEBERTA_MODULES = BERT_MODULES | {"q": "query_proj", "k": "key_proj", "v": "value_proj"}
DISTILBERT_MODULES = {
    "q": "attention\\.q_lin",
    "k": "attention\\.k_lin",
    "v": "attention\\.v_lin",
    "attn_out": "attention\\.out_lin",
    "ffn_in": "ffn\\.lin1",
    "ffn_out": "ffn\\.lin2",
}
GPT2_MODULES = {  # q, k and v are one fused Conv1D, attn.c_attn, so all three roles name it
    "q": "attn\\.c_attn",
    "k": "attn\\.c_attn",
    "v": "attn\\.c_attn",
    "attn_out": "attn\\.c_proj",
    "ffn_in": "mlp\\.c_fc",
    "ffn_out": "mlp\\.c_proj",
}
LLAMA_MODULES = {  # also Mistral, Qwen2 and Gemma: the same names
    "q": "self_attn\\.q_proj",
    "k": "self_attn\\.k_proj",
    "v": "self_attn\\.v_proj",
    "attn_out": "self_attn\\.o_proj",
    "ffn_in": "mlp\\.(gate_proj|up_proj)",  # the gated FFN's two input matrices
    "ffn_out": "mlp\\.down_proj",
}
T5_MODULES = {  # self-attention (both stacks) and cross-attention (decoder)
    "q": "(SelfAttention|EncDecAttention)\\.q",
    "k": "(SelfAttention|EncDecAttention)\\.k",
    "v": "(SelfAttention|EncDecAttention)\\.v",
    "attn_out": "(SelfAttention|EncDecAttention)\\.o",
    "ffn_in": "DenseReluDense\\.wi(_[01])?",  # wi (ReLU, original T5) or wi_0 and wi_1 (gated-gelu, T5 1.1)
    "ffn_out": "DenseReluDense\\.wo",
    "prefix_attn": "(SelfAttention|EncDecAttention)",
}
BART_MODULES = {
    "q": "(self_attn|encoder_attn)\\.q_proj",
    "k": "(self_attn|encoder_attn)\\.k_proj",
    "v": "(self_attn|encoder_attn)\\.v_proj",
    "attn_out": "(self_attn|encoder_attn)\\.out_proj",
    "ffn_in": "fc1",
    "ffn_out": "fc2",
    "prefix_attn": "(self_attn|encoder_attn)",
}
DECODER_HEADS = {"causal_lm": ("lm_head",), "sequence_classification": ("score",)}
SEQ2SEQ_HEADS = {"seq2seq_lm": ("lm_head",), "sequence_classification": ("classification_head",)}

MODEL_TYPES = {
    "bert": ModelType("sequence_classification", BERT_MODULES, {"sequence_classification": ("classifier",)}),
    "roberta": ModelType("sequence_classification", BERT_MODULES, {"sequence_classification": ("classifier",)}),
    # both new: hub checkpoints carry no pooler weights
    "deberta-v2": ModelType(
        "sequence_classification", DEBERTA_MODULES, {"sequence_classification": ("pooler", "classifier")}
    ),
    "distilbert": ModelType(
        "sequence_classification", DISTILBERT_MODULES, {"sequence_classification": ("pre_classifier", "classifier")}
    ),
    "gpt2": ModelType("causal_lm", GPT2_MODULES, DECODER_HEADS),
    "llama": ModelType("causal_lm", LLAMA_MODULES, DECODER_HEADS),
    "mistral": ModelType("causal_lm", LLAMA_MODULES, DECODER_HEADS),
    "qwen2": ModelType("causal_lm", LLAMA_MODULES, DECODER_HEADS),
    "qwen3": ModelType("causal_lm", LLAMA_MODULES, DECODER_HEADS),
    "gemma": ModelType("causal_lm", LLAMA_MODULES, DECODER_HEADS),
    "t5": ModelType("seq2seq_lm", T5_MODULES, SEQ2SEQ_HEADS),
    "bart": ModelType("seq2seq_lm", BART_MODULES, SEQ2SEQ_HEADS),
}

# config.json entries that do not shape the weights: bookkeeping, runtime switches, labels (the task sets
# them), generation settings and quantization (a method's load option)
NON_ARCHITECTURE_KEYS = frozenset(
    {
        "_name_or_path",
        "_commit_hash",
        "_attn_implementation",
        "_attn_implementation_autoset",
        "architectures",
        "auto_map",
        "transformers_version",
        "dtype",
        "torch_dtype",
        "id2label",
        "label2id",
        "num_labels",
        "problem_type",
        "finetuning_task",
        "task_specific_params",
        "tokenizer_class",
        "prefix",
        "use_cache",
        "gradient_checkpointing",
        "return_dict",
        "output_hidden_states",
        "output_attentions",
        "torchscript",
        "quantization_config",
        "transformers.js_config",
    }
)
GENERIC_FOLDER_NAMES = frozenset({"model", "models", "snapshots"})  # folders whose name says nothing of the model
COMMIT_HASH = re.compile(r"[0-9a-f]{40}")  # an HF cache snapshot folder


def is_local_folder(hub_id: str) -> bool:
    """A path on this machine rather than a hub id (`name` or `org/name`); an existing folder wins, as in
    transformers."""
    path = Path(hub_id).expanduser()
    return path.is_dir() or hub_id.startswith(("/", ".", "~")) or hub_id.count("/") > 1


def model_name(hub_id: str) -> str:
    """A stable, readable name for records: `hf-` and the repository or folder name, lower case
    (sentence-transformers/all-MiniLM-L6-v2 -> hf-all-minilm-l6-v2). A local folder with a generic name
    (model, an HF cache snapshot) is named after the folder above it."""
    parts = list(Path(hub_id).expanduser().absolute().parts) if is_local_folder(hub_id) else [hub_id]
    while len(parts) > 1 and (parts[-1] in GENERIC_FOLDER_NAMES or COMMIT_HASH.fullmatch(parts[-1])):
        parts.pop()
    name = parts[-1].split("/")[-1].split("--")[-1]  # models--org--name: an HF cache folder
    return f"{PLACEHOLDER_NAME}-{re.sub(r'[^a-z0-9.]+', '-', name.lower()).strip('-.')}"


def missing_config_error(hub_id: str):
    return ConfigError(
        f"No config.json found for model.hub_id={hub_id!r} (not a local folder holding one, nor a hub model in "
        f"the HF cache); give a local folder with the model's config.json, or use an offline model: "
        f"{OFFLINE_MODELS}."
    )


def read_hub_config(hub_id: str, source: str):
    """The transformers config of the model's config.json: a local folder's file, or the HF cache's copy of
    a hub model (transformers looks there when the hub cannot be reached)."""
    from huggingface_hub.errors import HFValidationError
    from transformers import AutoConfig
    from transformers import __version__ as transformers_version

    if is_local_folder(source):
        source = str(Path(source).expanduser())
        if not (Path(source) / "config.json").is_file():
            raise missing_config_error(hub_id)
    try:
        return AutoConfig.from_pretrained(source, trust_remote_code=False)  # False: never prompts, never runs code
    except (OSError, HFValidationError) as error:
        raise missing_config_error(hub_id) from error
    except ValueError as error:  # a model type this transformers does not know, or custom code
        reason = str(error).split("\n")[0].split(". ")[0].rstrip(".")
        raise ConfigError(
            f"transformers {transformers_version} cannot read the config.json of model.hub_id={hub_id!r} "
            f"({reason}); peftbench runs the model types transformers itself implements."
        ) from error


def architecture_of(config) -> dict:
    """config.json's numbers as `AutoConfig.for_model(model_type, **rest)` takes them back: what differs
    from transformers' base config, less what does not shape the weights."""
    numbers = {key: value for key, value in config.to_diff_dict().items() if key not in NON_ARCHITECTURE_KEYS}
    numbers.pop("model_type", None)
    return {"model_type": config.model_type, **numbers}


def table_entry(model_type: str, model_cfg) -> ModelType | None:
    """The model type's row; an unknown type needs its roles and head by hand, else one sentence."""
    if model_type in MODEL_TYPES or (model_cfg.get("modules") and model_cfg.get("head")):
        return MODEL_TYPES.get(model_type)
    raise ConfigError(
        f"Model type {model_type!r} of model.hub_id={model_cfg.hub_id!r} has no roles in peftbench's table "
        f"(known: {', '.join(sorted(MODEL_TYPES))}); give them by hand, e.g. model.modules='{{q: <regex>, "
        f"v: <regex>}}' model.head=[<head module name>] (and model.auto_class unless it is a sequence classifier)."
    )


def chosen_auto_class(model_cfg, entry: ModelType | None) -> str:
    name = model_cfg.get("auto_class") or (entry.auto_class if entry else "sequence_classification")
    if name not in AUTO_CLASS_NAMES:
        raise ConfigError(f"model.auto_class={name!r} is not valid; valid: {', '.join(AUTO_CLASS_NAMES)}.")
    return name


def chosen_head(model_cfg, entry: ModelType | None, model_type: str, auto_class: str) -> list[str]:
    if model_cfg.get("head"):
        return list(model_cfg.head)
    if auto_class not in entry.heads:
        raise ConfigError(
            f"Model type {model_type!r} has no head in peftbench's table for model.auto_class={auto_class} "
            f"(known: {', '.join(entry.heads)}); give it by hand: model.head=[<head module name>]."
        )
    return list(entry.heads[auto_class])


def complete_model_config(model_cfg: DictConfig) -> DictConfig:
    """The model config with everything that config.json and the table decide filled in; a config without
    `from_config_json: true` comes back as it is. Bad input fails in one sentence (ConfigError)."""
    if not model_cfg.get("from_config_json"):
        return model_cfg
    if OmegaConf.is_missing(model_cfg, "hub_id") or not model_cfg.hub_id:
        raise ConfigError(
            f"model={model_cfg.name} needs model.hub_id=<hub id or local folder> (e.g. FacebookAI/roberta-base)."
        )
    from peftbench.models import model_source

    hub_id = str(model_cfg.hub_id)
    config = read_hub_config(hub_id, model_source(model_cfg))
    architecture = architecture_of(config)
    if model_cfg.get("architecture"):  # what the user set wins over config.json
        architecture |= OmegaConf.to_container(model_cfg.architecture, resolve=True)
    model_type = architecture["model_type"]
    entry = table_entry(model_type, model_cfg)
    auto_class = chosen_auto_class(model_cfg, entry)
    completed = OmegaConf.to_container(model_cfg, resolve=True)
    modules = completed.get("modules") or dict(entry.modules)  # roles given by hand are used as given
    completed |= {
        "name": model_name(hub_id) if model_cfg.name == PLACEHOLDER_NAME else model_cfg.name,
        "auto_class": auto_class,
        "architecture": architecture,
        "modules": modules,
        "head": chosen_head(model_cfg, entry, model_type, auto_class),
    }
    return OmegaConf.create(completed)
