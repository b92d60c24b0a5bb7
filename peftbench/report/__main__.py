"""python -m peftbench.report [results_dir=results] [out_dir=results/reports] [model=minilm_l6]

Writes every table spec as Markdown, LaTeX, HTML and CSV from the records under results_dir."""

import sys
from pathlib import Path

from peftbench.records import read_records
from peftbench.report.render import RENDERERS
from peftbench.report.specs import SPECS
from peftbench.report.tables import build


def write_reports(records: list[dict], out_dir: Path, model: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, spec in SPECS.items():
        table = build(spec, records, model)
        for extension, render in RENDERERS.items():
            path = out_dir / f"{name}.{extension}"
            path.write_text(render(table), encoding="utf-8")
            written.append(path)
    return written


def main() -> None:
    args = {"results_dir": "results", "out_dir": "results/reports", "model": "minilm_l6"}
    for argument in sys.argv[1:]:
        key, _, value = argument.partition("=")
        if key not in args:
            print(f"error: unknown argument '{key}'; valid: {', '.join(args)}.", file=sys.stderr)
            raise SystemExit(2)
        args[key] = value
    records = read_records(args["results_dir"])
    for path in write_reports(records, Path(args["out_dir"]), args["model"]):
        print(path)


if __name__ == "__main__":
    main()
