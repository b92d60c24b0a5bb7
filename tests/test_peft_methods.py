"""Behaviour particular to the peft-library methods beyond the shared method table."""

import pytest

from peftbench.methods import METHODS
from peftbench.recipe import run

from conftest import compose_config


def test_adalora_prunes_to_the_target_budget_unevenly(tiny_run_config):
    cfg = tiny_run_config("adalora", "method.init_r=6", "method.target_r=2", "method.tinit=2", "method.tfinal=6",
                          "method.deltaT=2", "trainer.epochs=4", "method.target_modules=[q,k,v,attn_out,ffn_in,ffn_out]")
    state = run(cfg).record["method_state"]
    matrices = 2 * 6  # six roles in each of two layers
    assert len(state["ranks"]) == matrices
    assert state["total_rank"] == sum(state["ranks"].values()) == 2 * matrices  # target_r x matrices
    assert len(set(state["ranks"].values())) > 1, state["ranks"]  # allocated by importance, not uniformly


def test_adalora_needs_room_for_its_schedule(tiny_run_config):
    with pytest.raises(ValueError, match=r"AdaLoRA needs more training steps \(24\) than tinit \+ tfinal \(20 \+ 10\)"):
        run(tiny_run_config("adalora", "method.tinit=20", "method.tfinal=10"))


def test_a_method_refuses_a_model_type_it_cannot_serve(tiny_run_config):
    with pytest.raises(ValueError, match="Method 'prefix_tuning' cannot serve model type 'deberta-v2'; it supports: bert, roberta"):
        run(tiny_run_config("prefix_tuning", "model=deberta_v3_base"))


def test_every_method_declares_its_family_and_merge():
    for method in METHODS.values():
        assert method.family in ("baseline", "additive", "selective", "reparametrised", "hybrid")
    assert {name for name, m in METHODS.items() if m.mergeable} == {
        "adalora", "bitfit", "dora", "ia3", "loha", "lokr", "lora", "qlora", "qlora_8bit", "rslora", "vera",
        "diff_pruning", "far", "fishmask", "intrinsic_said"}
    assert {name for name, m in METHODS.items() if m.family == "selective"} == {"bitfit", "diff_pruning", "far", "fishmask"}


def test_prompt_tuning_starts_from_a_text(tiny_run_config):
    output = run(tiny_run_config("prompt_tuning", "method.init=text", "method.init_text='is it entailed?'",
                                 "method.num_virtual_tokens=4", "trainer.max_steps=1"))
    assert output.record["status"] == "ok"


def test_prompt_tuning_text_init_needs_a_text(tiny_run_config):
    with pytest.raises(ValueError, match="Prompt-tuning init 'text' needs method.init_text"):
        run(tiny_run_config("prompt_tuning", "method.init=text"))


def test_unknown_lora_init_names_the_choices(tiny_run_config):
    with pytest.raises(ValueError, match="Unknown LoRA init 'svd'; valid: default, gaussian, pissa, olora"):
        run(tiny_run_config("lora", "method.init=svd"))


@pytest.mark.parametrize("method, bits", [("qlora", 4), ("qlora_8bit", 8)])
def test_qlora_quantizes_on_cpu_and_saves_weight_memory(method, bits, tiny_run_config):
    common = ["trainer.max_steps=2", "method.r=4", "method.target_modules=[q,k,v,attn_out,ffn_in,ffn_out]"]
    quantized = run(tiny_run_config(method, *common)).record
    plain = run(tiny_run_config("lora", *common)).record
    state = quantized["method_state"]
    assert state["quantization"]["bits"] == bits and state["quantization"]["skipped_modules"] == ["classifier"]
    assert ("quant_type" in state["quantization"]) == (bits == 4)  # NF4 and double quantization are 4-bit options only
    assert quantized["params"]["trainable"] == plain["params"]["trainable"]  # the same LoRA on a smaller base
    assert quantized["params"]["total"] == plain["params"]["total"]  # of as many weights, 4-bit ones unpacked
    saved = state["weight_memory_saved_bytes"]
    assert saved == state["fp32_weights_bytes"] - state["quantized_weights_bytes"] > 0
    # 4-bit packs two weights per byte (1/8 of fp32), 8-bit one (1/4)
    assert state["quantized_weights_bytes"] * (8 if bits == 4 else 4) == state["fp32_weights_bytes"]
    assert quantized["memory"]["breakdown"]["weights_bytes"] == plain["memory"]["breakdown"]["weights_bytes"] - saved
