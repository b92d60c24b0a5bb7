"""The path real-scale users take, held on CPU with tiny models: pretrained weights by default (and one
sentence when they cannot be fetched), the attention kernels and gradient checkpointing as options, the
activation memory measured directly, and the memory split into training and evaluation."""

import pytest
import torch

from peftbench import CONF_DIR, measure, validate
from peftbench.recipe import run

from conftest import compose_config

RANDOM_BY_DESIGN = {"gpt3_175b"}  # no public weights: built from its numbers


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml")))
def test_every_model_with_hub_weights_loads_them_unless_told_otherwise(name):
    model = compose_config(["+method=lora", "+task=rte", f"model={name}"]).model
    random_weights = name.startswith("tiny_") or name in RANDOM_BY_DESIGN
    assert model.pretrained is not random_weights


def test_a_model_that_cannot_be_fetched_stops_before_any_work_with_the_ways_forward(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    cfg = compose_config(["+method=lora", "+task=rte", "model=bert_base", f"results_dir={tmp_path}", "tracker=none"])
    with pytest.raises(validate.ConfigError) as error:
        run(cfg)
    message = str(error.value)
    assert message.startswith("Model 'bert_base' (google-bert/bert-base-uncased) could not be fetched")
    assert "model=minilm_l6 or model=smollm2_135m" in message and "model.pretrained=false" in message
    assert message.count(". ") == 0 and message.endswith(".")


def test_the_record_says_what_ran_random_weights_attention_and_dtypes(tiny_run_config):
    record = run(tiny_run_config("lora", "trainer.epochs=1", "model.attn_implementation=eager")).record
    assert record["run"]["weights"] == "random"
    assert record["run"]["attn_implementation"] == "eager"
    dtypes = record["run"]["parameter_dtypes"]
    assert (
        set(dtypes["trainable"]) == {"float32"} and sum(dtypes["trainable"].values()) == record["params"]["trainable"]
    )


def test_sdpa_is_the_default_attention_and_gives_eager_results(tiny_run_config):
    default = run(tiny_run_config("lora", "trainer.epochs=1")).record
    eager = run(tiny_run_config("lora", "trainer.epochs=1", "model.attn_implementation=eager", "force=true")).record
    assert default["run"]["attn_implementation"] == "sdpa"
    assert default["predictions"]["predictions"] == eager["predictions"]["predictions"]
    assert default["metrics"]["first_loss"] == pytest.approx(eager["metrics"]["first_loss"], rel=1e-5)


@pytest.mark.parametrize("method", ["lora", "full_ft"])
def test_gradient_checkpointing_trains_the_same_and_saves_less_for_backward(method, tiny_run_config):
    """Non-reentrant checkpointing on a frozen base (LoRA) and on a trained one: the same losses (the
    recomputation replays the dropout masks), less memory saved for backward."""
    plain = run(tiny_run_config(method, "trainer.epochs=1"))
    checkpointed = run(tiny_run_config(method, "trainer.epochs=1", "trainer.gradient_checkpointing=true"))
    assert checkpointed.losses == pytest.approx(plain.losses, rel=1e-4, abs=1e-6)
    saved = [output.record["memory"]["breakdown"]["activations_bytes"] for output in (plain, checkpointed)]
    assert 0 < saved[1] < saved[0]


def test_a_model_class_without_gradient_checkpointing_is_refused_in_one_sentence(monkeypatch):
    class NoCheckpointing:
        supports_gradient_checkpointing = False

    monkeypatch.setattr("peftbench.models.model_class", lambda model_cfg: NoCheckpointing)
    cfg = compose_config(["+method=lora", "+task=rte", "model=tiny_bert", "trainer.gradient_checkpointing=true"])
    with pytest.raises(validate.ConfigError, match=r"^trainer.gradient_checkpointing=true is not supported by "):
        validate.validate(cfg)


def test_bf16_on_a_gpu_without_it_is_refused_in_one_sentence(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(validate.ConfigError, match=r"^trainer.precision=bf16 is not supported by Tesla T4; use "):
        validate.check_precision("bf16", torch.device("cuda"))
    validate.check_precision("bf16", torch.device("cpu"))  # CPUs run it (natively with AVX512-BF16)


def test_saved_activations_count_what_autograd_keeps_for_backward_once_and_no_parameters():
    layer = torch.nn.Linear(8, 16)
    x = torch.randn(4, 8)
    with measure.SavedActivations(layer) as saved:
        hidden = layer(x)
        out = torch.relu(hidden)
        out.sum().backward()
    # addmm keeps its input for the weight's gradient (the weight itself is a parameter); relu its output
    assert saved.bytes == x.numel() * 4 + out.numel() * 4
    with measure.SavedActivations(layer) as none_saved, torch.no_grad():
        layer(x)
    assert none_saved.bytes == 0


def test_activation_memory_grows_with_the_batch_and_the_peak_is_split_by_phase(tiny_run_config):
    small, large = (
        run(tiny_run_config("lora", "trainer.epochs=1", f"trainer.batch_size={size}", "force=true")).record
        for size in (4, 16)
    )
    saved = [record["memory"]["breakdown"]["activations_bytes"] for record in (small, large)]
    assert 2.5 < saved[1] / saved[0] < 8  # 4x the examples (and the longest of 16 toy sentences is a little longer)
    phases = large["memory"]["by_phase"]
    assert set(phases) == {"train", "evaluation"} and all(p["rss"] >= 0 for p in phases.values())
    assert large["memory"]["peak_train_bytes"] == phases["train"]["rss"]
