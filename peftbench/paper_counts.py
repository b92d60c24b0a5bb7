"""The published parameter counts (reference/published_param_counts.csv) counted again on the meta device, each
with its verdict: matches, or differs and why (the row's note).

    python -m peftbench.published counts    # make published-counts: results/published/counts.json

The published report's part 6 is rendered from the written file (`table_lines`), so rebuilding the report does
not count again; tests/test_counts.py holds every row to its verdict."""

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED_COUNTS = ROOT / "reference" / "published_param_counts.csv"
UNITS = {"M": 1e6, "K": 1e3, "1": 1, "%": 0.01}
# which count a row's published number is (stored: after training-only parts are dropped)
QUANTITIES = {"method": "method_params", "total": "total", "stored": "method_stored", "stored_share": "stored_share"}


def published_rows(path: Path = PUBLISHED_COUNTS) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def rounded(row: dict, ours: float) -> float:
    """Ours in the row's unit, at its number of decimals: what the paper would have printed."""
    return round(ours / UNITS[row["unit"]], int(row["decimals"]))


def ours_for(row: dict) -> float:
    from peftbench.cli import compose
    from peftbench.count import count

    cfg = compose([f"+method={row['method']}", f"model={row['model']}", *row["overrides"].split()])
    return count(cfg)[QUANTITIES[row["quantity"]]]


def recount(rows: list[dict]) -> list[dict]:
    counted = []
    for index, row in enumerate(rows, 1):
        ours = ours_for(row)
        counted.append(row | {"ours": ours, "matches": rounded(row, ours) == float(row["published"])})
        print(
            f"[{index}/{len(rows)}] {row['paper']} {row['published_method']} {row['published_model']}", file=sys.stderr
        )
    return counted


def write(out: Path) -> dict:
    from peftbench import records

    document = {"kind": "paper_counts", "rows": recount(published_rows()), "provenance": records.provenance(None)}
    records.write_record(document, out)
    return document


def ours_text(row: dict) -> str:
    if row["quantity"] == "stored_share":
        return f"{100 * row['ours']:.4f}%"
    return f"{row['ours']:,}"


def table_lines(document: dict) -> list[str]:
    """Every published count beside ours, exact and in the paper's rounding, with the verdict."""
    lines = [
        "| Paper | Table | Model | Method | Published | Ours (exact) | Ours, rounded as published | Verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in document["rows"]:
        unit = "" if row["unit"] == "1" else row["unit"]
        verdict = "matches" if row["matches"] else f"differs: {row['note']}"
        lines.append(
            f"| {row['paper']} | {row['table']} | {row['published_model']} | {row['published_method']} "
            f"| {row['published']}{unit} | {ours_text(row)} | {rounded(row, row['ours'])}{unit} | {verdict} |"
        )
    matched = sum(row["matches"] for row in document["rows"])
    return [*lines, "", f"{matched} of {len(document['rows'])} published counts reproduced exactly."]
