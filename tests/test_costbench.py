"""The cost benchmark: every method in one process on the same batches, in interleaved rounds."""

import json

import pytest

from peftbench import costbench
from peftbench.methods import get_method

from conftest import write_toy_rte

TINY = [
    "+task=rte",
    "model=tiny_bert",
    "tracker=none",
    "trainer.batch_size=8",
    "measure.latency_batch_size=2",
    "measure.latency_seq_length=16",
]


def test_every_method_is_timed_on_the_same_batches_and_a_refusal_is_listed(tmp_path, capsys):
    data_dir = write_toy_rte(tmp_path / "data")
    out = tmp_path / "costs.json"
    methods = ["lora", "bitfit", "prefix_tuning", "adaption_prompt"]
    costbench.main(
        [f"methods={','.join(methods)}", "rounds=2", "steps=3", f"out={out}", *TINY, f"data_dir={data_dir}"]
    )
    document = json.loads(out.read_text())
    assert document["kind"] == "costbench" and document["settings"]["threads"] == 1
    assert list(document["methods"]) == ["lora", "bitfit", "prefix_tuning"]
    assert "adaption_prompt" in document["refused"]  # LLaMA-Adapter serves LLaMA-type models, not BERT
    assert len(document["settings"]["train_batch_tokens"]) == 3  # the round's timed batches, one list for all
    assert document["base_latency_ms"]["n"] == 2
    for name, measured in document["methods"].items():
        assert measured["step_seconds"]["n"] == 2 * 3  # rounds x steps, each round's first step left out
        assert measured["step_seconds"]["q1"] <= measured["step_seconds"]["median"] <= measured["step_seconds"]["q3"]
        assert measured["latency_ms"]["n"] == 2
        assert (measured["merged_latency_ms"] is not None) == get_method(name).mergeable
        assert (measured["merged_overhead_pct"] is not None) == get_method(name).mergeable
    assert "[steps round 2/2]" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argument", "message"),
    [("methods=lora,nope", "unknown method(s) nope; available:"), ("rounds=0", "rounds=0 is not a whole number")],
)
def test_bad_options_fail_in_one_sentence_before_any_work(argument, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        costbench.main([argument, f"out={tmp_path / 'costs.json'}", *TINY])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "costs.json").exists()
