"""Checkpoints load: every method's tuned model, saved by its run, rebuilt by `peftbench.load` in a fresh
Python process, gives the outputs the tuned model gave in the run's process; peft's methods save in the
format `peft.PeftModel.from_pretrained` loads."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_adapters import CASES as ADAPTER_CASES
from test_methods import CASES as METHOD_CASES

from peftbench import checkpoints, measure, predict
from peftbench.methods import METHODS
from peftbench.recipe import run

LOAD_IN_A_FRESH_PROCESS = """
import sys, torch, peft, peftbench
from peftbench import measure
for case in sys.argv[1:]:
    saved = torch.load(case)
    tuned = peftbench.load(saved["record"])
    if saved["record"]["checkpoint"]["format"] == "peft":  # loaded with peft.PeftModel.from_pretrained
        assert isinstance(tuned.model, peft.PeftModel), case
    saved["loaded"] = measure.outputs(tuned.model, saved["batch"], torch.device("cpu"))
    torch.save(saved, case)
"""
# (method, model, task) beyond every method on the tiny BERT: the language-model formats
LANGUAGE_MODEL_CASES = [
    ("lora", "tiny_gpt2_lm", "e2e_nlg"),
    ("prefix_tuning", "tiny_gpt2_lm", "e2e_nlg"),
    ("prompt_tuning", "tiny_llama_lm", "e2e_nlg"),
    ("cpt", "tiny_llama_lm", "e2e_nlg"),
    ("adapter_houlsby", "tiny_llama_lm", "e2e_nlg"),
    ("ia3", "tiny_t5_lm", "e2e_nlg"),
]


def classifier_for(method: str) -> str:
    """The tiny BERT, or the tiny LLaMA for a method that does not serve encoders (LLaMA-Adapter), or the tiny
    LLaMA language model (RTE by label words) for one that serves language models only (CPT)."""
    types, classes = METHODS[method].model_types, METHODS[method].auto_classes
    if classes is not None and "sequence_classification" not in classes:
        return "tiny_llama_lm"
    return "tiny_bert" if types is None or "bert" in types else "tiny_llama"


def overrides_of(method: str) -> list[str]:
    """The first case table row's overrides for the method (small sizes that train on the tiny models)."""
    rows = [row for row in (*METHOD_CASES.values(), *ADAPTER_CASES.values()) if row[0] == method]
    return list(rows[0][1])


@pytest.mark.slow
def test_every_method_loads_in_a_fresh_process(tiny_run_config, tmp_path):
    cases = [(method, classifier_for(method), "rte") for method in sorted(METHODS)] + LANGUAGE_MODEL_CASES
    saved = []
    for method, model, task in cases:
        cfg = tiny_run_config(method, f"model={model}", "trainer.epochs=1", *overrides_of(method), task=task)
        output = run(cfg)
        record = output.record
        folder = Path(record["checkpoint"]["path"])
        files = {path.name: path.stat().st_size for path in folder.iterdir()}
        assert record["checkpoint"]["bytes"] == sum(files.values()), f"{method}: not the size of what loads"
        description = json.loads((folder / checkpoints.DESCRIPTION).read_text())
        if record["checkpoint"]["format"] == "peft":  # peft's own files
            assert {"adapter_config.json", "adapter_model.safetensors"} <= set(files), method
        assert description["method"] == method and description["config"] == record["config"]
        batch = measure.latency_batch(output.model, batch_size=2, seq_length=12)
        path = tmp_path / f"{method}-{model}.pt"
        torch.save({"record": record, "batch": batch, "outputs": measure.outputs(output.model, batch, "cpu")}, path)
        saved.append(path)

    subprocess.run([sys.executable, "-c", LOAD_IN_A_FRESH_PROCESS, *map(str, saved)], check=True, timeout=600)

    for path in saved:
        result = torch.load(path)
        scale = max(1.0, result["outputs"].abs().max().item())
        difference = (result["loaded"] - result["outputs"]).abs().max().item()
        assert difference <= 1e-4 * scale, f"{path.stem}: loaded outputs differ by {difference:.3g}"
    assert {path.stem.split("-")[0] for path in saved} == set(METHODS)


def test_load_names_what_is_not_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a peftbench checkpoint: it has no peftbench.json"):
        checkpoints.load(tmp_path)
    with pytest.raises(ValueError, match="has no checkpoint folder"):
        checkpoints.load({"checkpoint": {"path": None}})


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_predict_gives_each_row_what_the_runs_evaluation_gave_it(tiny_run_config, toy_data_dir, tmp_path):
    record = run(tiny_run_config("lora", "trainer.epochs=1")).record
    inputs = tmp_path / "new.tsv"  # the dev rows, labels dropped: what a user brings
    lines = (toy_data_dir / "rte" / "dev.tsv").read_text().splitlines()
    inputs.write_text("\n".join("\t".join(line.split("\t")[:3]) for line in lines) + "\n")

    predict.main([record["path"], str(inputs), f"out={tmp_path / 'out.jsonl'}"])

    rows = read_jsonl(tmp_path / "out.jsonl")
    names = ["entailment", "not_entailment"]
    assert [row["prediction"] for row in rows] == [names[p] for p in record["predictions"]["predictions"]]
    assert rows[0]["sentence1"] == lines[1].split("\t")[1] and "label" not in rows[0]


def test_predict_generates_text_for_a_generation_task(tiny_run_config, tmp_path):
    record = run(tiny_run_config("lora", "model=tiny_gpt2_lm", "trainer.epochs=1", task="e2e_nlg")).record
    inputs = tmp_path / "mrs.jsonl"
    inputs.write_text(json.dumps({"meaning_representation": "name[alpha], food[french]"}) + "\n")
    predict.main([record["checkpoint"]["path"], str(inputs)])
    (row,) = read_jsonl(tmp_path / "mrs.predictions.jsonl")
    assert isinstance(row["prediction"], str) and row["meaning_representation"] == "name[alpha], food[french]"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["only-one"], "give a checkpoint (or record) and an input file"),
        (["{ckpt}", "missing.csv"], "the input file 'missing.csv' does not exist."),
        (["{ckpt}", "{wrong}"], "has no column 'sentence1', which task 'rte' reads; its columns: text."),
        (["{ckpt}", "{inputs}", "beams=4"], "unknown option 'beams'; valid: out, batch_size, device."),
        (["{tmp}", "{inputs}"], "is not a peftbench checkpoint: it has no peftbench.json."),
    ],
)
def test_predict_refuses_bad_input_in_one_sentence(arguments, message, tiny_run_config, tmp_path, capsys):
    record = run(tiny_run_config("bitfit", "trainer.epochs=1")).record
    (tmp_path / "wrong.csv").write_text("text\nhello\n")
    (tmp_path / "inputs.csv").write_text("sentence1,sentence2\na,b\n")
    values = {"ckpt": record["checkpoint"]["path"], "wrong": tmp_path / "wrong.csv", "tmp": tmp_path}
    values["inputs"] = tmp_path / "inputs.csv"
    with pytest.raises(SystemExit) as exit_info:
        predict.main([argument.format(**values) for argument in arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
