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
    assert result == {"warmup_steps": 2, "measured_steps": 3, "median_step_seconds": 2.0,
                      "samples_per_second": 48 / 6, "tokens_per_second": 600 / 6}


def test_latency_statistics_and_overhead():
    model = torch.nn.Linear(4, 4)

    class Wrapped(torch.nn.Module):  # latency() calls model(**batch)
        def forward(self, input_ids, attention_mask):
            return model(input_ids.float())

    result = measure.latency(Wrapped(), {"input_ids": torch.ones(2, 4), "attention_mask": torch.ones(2, 4)},
                             torch.device("cpu"), warmup=1, repeats=11, min_warmup_seconds=0.05)
    assert result["repeats"] == 11 and 0 < result["median_ms"] <= result["p90_ms"]
    assert measure.overhead_pct(110.0, 100.0) == 10.0


def test_merge_check_allows_rounding_in_proportion_to_the_outputs():
    small, large = torch.tensor([[0.5, -1.0]]), torch.tensor([[30.0, -20.0]])
    assert measure.merge_check(small, small + 9e-5, 1e-4)["equivalent"]
    assert not measure.merge_check(small, small + 2e-4, 1e-4)["equivalent"]  # outputs below 1: an absolute 1e-4
    check = measure.merge_check(large, large + 2e-3, 1e-4)  # logits of 30: up to 3e-3
    assert check["equivalent"] and check["allowed_abs_diff"] == pytest.approx(3e-3)
    assert not measure.merge_check(large, large + 4e-3, 1e-4)["equivalent"]
