"""Measurement primitives: per-run peak memory, throughput arithmetic, latency statistics."""

import pytest
import torch

from peftbench import measure


def test_peak_memory_is_per_window_not_per_process():
    cpu = torch.device("cpu")
    first = measure.PeakMemory(cpu).start()
    big = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    big += 1
    first_peak = first.stop()["peak_bytes"]
    del big
    second = measure.PeakMemory(cpu).start()
    small = torch.ones(4 * 2**20 // 4)  # 4 MiB
    small += 1
    second_peak = second.stop()["peak_bytes"]
    assert first_peak >= 60 * 2**20
    assert second_peak < 32 * 2**20  # a lifetime maximum (ru_maxrss) would still show the 64 MiB


def test_a_later_window_sees_memory_that_an_earlier_run_freed():
    """Runs of a multirun share a process: memory one run freed stays with the C allocator, and the
    next run would reuse it without the resident set growing. The window start hands it back first."""
    cpu = torch.device("cpu")

    def allocate_in_pieces():  # heap-sized pieces (not mmap'd): what glibc keeps after they are freed
        return [torch.ones(16 * 1024) for _ in range(64 * 2**20 // (16 * 1024 * 4))]

    pieces = allocate_in_pieces()
    del pieces
    window = measure.PeakMemory(cpu).start()
    pieces = allocate_in_pieces()
    peak = window.stop()["peak_bytes"]
    del pieces
    assert peak >= 48 * 2**20


def test_throughput_skips_warmup_and_counts_real_tokens():
    result = measure.throughput([5.0, 5.0, 1.0, 2.0, 3.0], [16] * 5, [100, 100, 100, 200, 300], warmup_steps=2)
    assert result == {
        "warmup_steps": 2,
        "measured_steps": 3,
        "median_step_seconds": 2.0,
        "measured_samples": 48,
        "samples_per_second": 48 / 6,
        "tokens_per_second": 600 / 6,
    }


def test_latency_statistics_and_overhead():
    model = torch.nn.Linear(4, 4)

    class Wrapped(torch.nn.Module):  # latency() calls model(**batch)
        def forward(self, input_ids, attention_mask):
            return model(input_ids.float())

    result = measure.latency(
        Wrapped(),
        {"input_ids": torch.ones(2, 4), "attention_mask": torch.ones(2, 4)},
        torch.device("cpu"),
        warmup=1,
        repeats=11,
        min_warmup_seconds=0.05,
    )
    assert result["repeats"] == 11 and 0 < result["median_ms"] <= result["p90_ms"]
    assert measure.overhead_pct(110.0, 100.0) == 10.0


def test_merge_check_allows_rounding_in_proportion_to_the_outputs():
    small, large = torch.tensor([[0.5, -1.0]]), torch.tensor([[30.0, -20.0]])
    assert measure.merge_check(small, small + 9e-5, 1e-4)["equivalent"]
    assert not measure.merge_check(small, small + 2e-4, 1e-4)["equivalent"]  # outputs below 1: an absolute 1e-4
    check = measure.merge_check(large, large + 2e-3, 1e-4)  # logits of 30: up to 3e-3
    assert check["equivalent"] and check["allowed_abs_diff"] == pytest.approx(3e-3)
    assert not measure.merge_check(large, large + 4e-3, 1e-4)["equivalent"]


# Methods the peft library wraps as a task model (peft trains its own copy of the task head) or as a
# plain one (LoRA: the head is the base's, unfrozen), and hybrids that reach peft's prefixes.
PEFT_WRAPPED = {
    "prompt_tuning": ["method.num_virtual_tokens=5"],
    "p_tuning": ["method.encoder_hidden_size=16"],
    "prefix_tuning": ["method.projection_hidden_size=16"],
    "p_tuning_v2": [],
    "lora": [],
    "mam": ["method.bottleneck=4", "method.projection_hidden_size=16"],
    "unipelt": ["method.bottleneck=4", "method.projection_hidden_size=16"],
}


def split_of(cfg):
    """parameter_split as a run takes it, and the base model's size and head size (before the method)."""
    from peftbench.methods.modules import head_parameters
    from peftbench.plan import apply_method, build_base, plan_run

    plan = plan_run(cfg)
    base = build_base(plan)[0]
    base_ids = {id(p) for p in base.parameters()}
    base_size = sum(p.numel() for p in base.parameters())
    base_head = sum(p.numel() for p in head_parameters(base, plan.arch))
    model = apply_method(base, plan)
    head_ids = {id(p) for p in head_parameters(model, plan.arch)}
    return measure.parameter_split(model, base_ids, head_ids), base_size, base_head


@pytest.mark.parametrize("model", ["tiny_bert", "tiny_gpt2"])
@pytest.mark.parametrize("method", sorted(PEFT_WRAPPED))
def test_the_task_head_is_counted_once_and_apart(method, model, tiny_run_config):
    """Wherever the trained head lies (peft's copy of it, or the base's own), it is the head: not an
    added parameter, and not a second time in the total; nothing of the base is unfrozen."""
    split, base_size, base_head = split_of(tiny_run_config(method, f"model={model}", *PEFT_WRAPPED[method]))
    assert split["head"] == base_head > 0 and split["unfrozen"] == 0
    assert split["added"] == split["trainable"] - split["head"] > 0
    assert split["total"] == base_size + split["added"]


def test_prompt_tuning_adds_its_prompts_and_trains_the_head(tiny_run_config):
    split, base_size, _ = split_of(tiny_run_config("prompt_tuning", "method.num_virtual_tokens=5"))
    d, classes = 32, 2  # the tiny BERT's width, the task's labels
    head = d * classes + classes
    assert (split["added"], split["unfrozen"], split["head"]) == (5 * d, 0, head)
    assert (split["trainable"], split["total"]) == (5 * d + head, base_size + 5 * d)
