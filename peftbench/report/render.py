"""Built tables as Markdown, LaTeX (booktabs), HTML and CSV."""

import csv
import html
import io

from peftbench.report.tables import BuiltTable

MISSING = "–"


def number(value: float | None, decimals: int) -> str:
    return MISSING if value is None else f"{value:.{decimals}f}"


def ours_text(entry, decimals: int) -> str:
    cell = entry.ours
    if cell is None:
        return MISSING
    spread = f" ± {cell.std:.{decimals}f}" if cell.std is not None else ""
    marker = " †" if entry.indistinguishable_from_best else ""
    return f"{cell.mean:.{decimals}f}{spread} (n={cell.n}){marker}"


def sides(column) -> list[str]:
    return [side for side, present in (("paper", column.published), ("ours", column.ours)) if present]


def grid(table: BuiltTable, emphasis) -> list[list[str]]:
    """Header and body: per column the paper's number and/or ours; our best per column emphasised."""
    header = ["Method"] + [f"{c.label} {side}" for c in table.spec.columns for side in sides(c)]
    body = []
    for row in table.spec.rows:
        line = [row.label]
        for column in table.spec.columns:
            entry = table.entries[(row.label, column.label)]
            if column.published:
                line.append(number(entry.paper, column.decimals))
            if column.ours:
                ours = ours_text(entry, column.decimals)
                line.append(emphasis(ours) if table.best.get(column.label) == row.label else ours)
        body.append(line)
    return [header] + body


def caption(table: BuiltTable) -> str:
    task = f" on {table.spec.task}" if table.spec.task else ""
    return (f"{table.spec.title}. Paper: {table.spec.paper_setting}. Ours: {table.model}{task}, final epoch, "
            f"mean ± std over seeds (n runs). {MISSING}: no number. Bold: our best per column; "
            f"†: not significantly different from it (Welch's t over seeds, p >= 0.05).")


def to_markdown(table: BuiltTable) -> str:
    rows = grid(table, lambda text: f"**{text}**")
    lines = [f"| {' | '.join(rows[0])} |", "|" + "---|" * len(rows[0])] + [f"| {' | '.join(r)} |" for r in rows[1:]]
    return f"{caption(table)}\n\n" + "\n".join(lines) + "\n"


def to_latex(table: BuiltTable) -> str:
    def escape(text: str) -> str:
        return text.replace("±", r"$\pm$").replace("–", "--").replace("_", r"\_").replace("†", r"$^\dagger$").replace("%", r"\%")

    rows = grid(table, lambda text: rf"\textbf{{{text}}}")
    body = "\n".join(" & ".join(escape(cell) for cell in row) + r" \\" for row in rows[1:])
    return (f"\\begin{{table}}\n\\caption{{{escape(caption(table))}}}\n\\begin{{tabular}}{{l{'r' * (len(rows[0]) - 1)}}}\n"
            f"\\toprule\n{' & '.join(escape(c) for c in rows[0])} \\\\\n\\midrule\n{body}\n\\bottomrule\n\\end{{tabular}}\n\\end{{table}}\n")


def to_html(table: BuiltTable) -> str:
    rows = grid(table, lambda text: f"<strong>{html.escape(text)}</strong>")
    escape = lambda text: text if text.startswith("<strong>") else html.escape(text)  # noqa: E731
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    return f"<table>\n<caption>{html.escape(caption(table))}</caption>\n<tr>{head}</tr>\n{body}\n</table>\n"


def to_csv(table: BuiltTable) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["method", "column", "paper", "ours_mean", "ours_std", "ours_n", "best", "indistinguishable_from_best"])
    for row in table.spec.rows:
        for column in table.spec.columns:
            entry = table.entries[(row.label, column.label)]
            ours = entry.ours
            writer.writerow([row.label, column.label, "" if entry.paper is None else entry.paper,
                             "" if ours is None else ours.mean, "" if ours is None or ours.std is None else ours.std,
                             0 if ours is None else ours.n, table.best.get(column.label) == row.label,
                             entry.indistinguishable_from_best])
    return out.getvalue()


RENDERERS = {"md": to_markdown, "tex": to_latex, "html": to_html, "csv": to_csv}
