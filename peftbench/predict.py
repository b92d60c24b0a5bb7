"""python -m peftbench.predict <checkpoint folder or record.json> <inputs.csv|.tsv|.jsonl> [out=predictions.jsonl]
                             [batch_size=64] [device=cpu]

Predictions of a tuned model for new inputs: each input row as it was, with `prediction` added (the class
name, the score of a regression task, or the generated text), one JSON object per line. The rows need the
columns the task's templates read (SST-2: `sentence`; RTE: `sentence1`, `sentence2`); a label column is
not needed. The inputs go through the evaluation code of the run, so a row gets the prediction that the
run's evaluation would have given it."""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

from omegaconf import open_dict

from peftbench.data import READERS, DataError, Example, fields_read, task_type

USAGE = __doc__.split("\n\n")[0]
OPTIONS = {"out": None, "batch_size": "64", "device": "cpu"}


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def read_inputs(path: Path, task) -> list[dict]:
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in READERS:
        fail(f"cannot read '{path}': its suffix '.{fmt}' is not one of {', '.join('.' + r for r in READERS)}.")
    rows = READERS[fmt](path, SimpleNamespace(columns=None))  # a TSV's columns come from its header line
    needed = [name for name in fields_read(task) if name != task.label_field]
    if not rows:
        fail(f"'{path}' holds no rows to predict.")
    if missing := [name for name in needed if name not in rows[0]]:
        fail(
            f"'{path}' has no column '{missing[0]}', which task '{task.name}' reads; "
            f"its columns: {', '.join(rows[0])}."
        )
    return rows


def unlabelled_example(row: dict, task) -> Example:
    segments = tuple(template.format_map(row) for template in task.segments)
    prompt = task.prompt.format_map(row) if task.get("prompt") else None
    if task_type(task) == "generation":
        return Example(segments=segments, label="", prompt=prompt, references=("",))
    return Example(segments=segments, label=0 if task.labels else 0.0, prompt=prompt)


def predictions(tuned, rows: list[dict], batch_size: int, device) -> list:
    """The run's evaluation of these rows with no metrics: what it predicts for each."""
    from peftbench.formats import EvalSetup

    plan = tuned.plan
    task = plan.cfg.task.copy()
    with open_dict(task):
        task.metrics = []  # nothing to score against
    setup = EvalSetup(tuned.tokenizer, task, plan.max_length, batch_size, device)
    evaluation = plan.format.evaluate(tuned.model, [unlabelled_example(row, task) for row in rows], setup)
    if task_type(task) == "classification" and task.labels:
        return [str(task.labels[index]) for index in evaluation.predictions]
    return evaluation.predictions


def parse(argv: list[str]) -> tuple[str, Path, dict]:
    if any(argument in ("-h", "--help") for argument in argv):
        print(__doc__)
        raise SystemExit(0)
    positional = [a for a in argv if "=" not in a]
    options = dict(OPTIONS)
    for argument in (a for a in argv if "=" in a):
        key, _, value = argument.partition("=")
        if key not in options:
            fail(f"unknown option '{key}'; valid: {', '.join(options)}.")
        options[key] = value
    if len(positional) != 2:
        fail(f"give a checkpoint (or record) and an input file; usage: {USAGE.removeprefix('python -m ')}")
    if not options["batch_size"].isdigit() or int(options["batch_size"]) < 1:
        fail(f"batch_size must be a positive integer, not '{options['batch_size']}'.")
    inputs = Path(positional[1])
    if not inputs.is_file():
        fail(f"the input file '{inputs}' does not exist.")
    return positional[0], inputs, options


def main(argv: list[str] | None = None) -> None:
    source, inputs, options = parse(sys.argv[1:] if argv is None else argv)
    import torch

    from peftbench.checkpoints import checkpoint_folder, load

    try:
        folder = checkpoint_folder(source)
    except (OSError, ValueError) as error:
        fail(str(error))
    device = torch.device(options["device"])
    tuned = load(folder, device)
    try:
        rows = read_inputs(inputs, tuned.plan.cfg.task)
    except DataError as error:
        fail(str(error))
    out = Path(options["out"] or inputs.with_name(inputs.stem + ".predictions.jsonl"))
    predicted = predictions(tuned, rows, int(options["batch_size"]), device)
    with open(out, "w", encoding="utf-8") as file:
        for row, prediction in zip(rows, predicted):
            file.write(json.dumps({**row, "prediction": prediction}, ensure_ascii=False) + "\n")
    print(f"{len(rows)} predictions of {tuned.plan.method.name} ({folder}) -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
