"""Built tables as Markdown, LaTeX (booktabs), HTML and CSV."""

import csv
import html
import io

from peftbench.report.aggregate import STUCK_LOSS_SHARE
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
    collapsed = f", {entry.collapsed} collapsed" if entry.collapsed else ""
    return f"{cell.mean:.{decimals}f}{spread} (n={cell.n}{collapsed}){marker}"


def same_setting(table: BuiltTable) -> bool:
    return table.spec.paper_model is not None and table.model == table.spec.paper_model


def sides(column, with_difference: bool) -> list[str]:
    present = (
        ("paper", column.published),
        ("ours", column.ours),
        ("Δ", with_difference and column.published and column.ours),
    )
    return [side for side, shown in present if shown]


def difference(entry, decimals: int) -> str:
    if entry.paper is None or entry.ours is None:
        return MISSING
    return f"{entry.ours.mean - entry.paper:+.{decimals}f}"


def grid(table: BuiltTable, emphasis) -> list[list[str]]:
    """Header and body: per column the paper's number and/or ours (and ours minus paper where ours is the
    paper's model); our best per column emphasised."""
    with_difference = same_setting(table)
    header = ["Method"] + [f"{c.label} {side}" for c in table.spec.columns for side in sides(c, with_difference)]
    body = []
    for row in table.rows:
        line = [row.label]
        for column in table.spec.columns:
            entry = table.entries[(row.label, column.label)]
            if column.published:
                line.append(number(entry.paper, column.decimals))
            if column.ours:
                ours = ours_text(entry, column.decimals)
                line.append(emphasis(ours) if table.best.get(column.label) == row.label else ours)
            if with_difference and column.published and column.ours:
                line.append(difference(entry, column.decimals))
        body.append(line)
    return [header] + body


def collapsed_text(table: BuiltTable) -> str:
    """The caption's count of collapsed runs per row ("" when none collapsed)."""
    if not table.collapsed:
        return ""
    counts = "; ".join(
        f"{label}: {', '.join(f'{n} {reason}' for reason, n in found.reasons.items())} (of {found.runs})"
        for label, found in table.collapsed.items()
    )
    return (
        f" Collapsed runs, marked in their cells and not results to rank (one answer for every evaluation example, "
        f"or a training loss whose last twentieth of steps averages at least {STUCK_LOSS_SHARE:.0%} of its first "
        f"twentieth's; runs recorded without a loss curve are judged by their answers only): {counts}."
    )


def caption(table: BuiltTable) -> str:
    task = f" on {table.spec.task}" if table.spec.task else ""
    return (
        f"{table.spec.title}. Paper: {table.spec.paper_setting}. Ours: {table.model}{task}, final epoch, "
        f"mean ± std over seeds (n runs). {MISSING}: no number. Bold: our best per column; †: not significantly "
        f"different from it (paired bootstrap over evaluation examples where predictions are recorded, "
        f"else Welch's t over seeds; p >= 0.05)"
        + (". Δ: ours minus paper, the same model." if same_setting(table) else ".")
        + "".join(
            f" Ours on {task}: a seeded {n:,}-example subset of its training set." for task, n in table.subsets.items()
        )
        + collapsed_text(table)
    )


def to_markdown(table: BuiltTable) -> str:
    rows = grid(table, lambda text: f"**{text}**")
    lines = [f"| {' | '.join(rows[0])} |", "|" + "---|" * len(rows[0])] + [f"| {' | '.join(r)} |" for r in rows[1:]]
    return f"{caption(table)}\n\n" + "\n".join(lines) + "\n"


def to_latex(table: BuiltTable) -> str:
    def escape(text: str) -> str:
        return (
            text.replace("±", r"$\pm$")
            .replace("–", "--")
            .replace("_", r"\_")
            .replace("†", r"$^\dagger$")
            .replace("%", r"\%")
        )

    rows = grid(table, lambda text: rf"\textbf{{{text}}}")
    body = "\n".join(" & ".join(escape(cell) for cell in row) + r" \\" for row in rows[1:])
    return (
        f"\\begin{{table}}\n\\caption{{{escape(caption(table))}}}\n"
        f"\\begin{{tabular}}{{l{'r' * (len(rows[0]) - 1)}}}\n"
        f"\\toprule\n{' & '.join(escape(c) for c in rows[0])} \\\\\n\\midrule\n{body}\n"
        f"\\bottomrule\n\\end{{tabular}}\n\\end{{table}}\n"
    )


def to_html(table: BuiltTable) -> str:
    rows = grid(table, lambda text: f"<strong>{html.escape(text)}</strong>")
    escape = lambda text: text if text.startswith("<strong>") else html.escape(text)  # noqa: E731
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    return f"<table>\n<caption>{html.escape(caption(table))}</caption>\n<tr>{head}</tr>\n{body}\n</table>\n"


def to_csv(table: BuiltTable) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "method",
            "column",
            "paper",
            "ours_mean",
            "ours_std",
            "ours_n",
            "best",
            "indistinguishable_from_best",
            "test",
            "collapsed",
        ]
    )
    for row in table.rows:
        for column in table.spec.columns:
            entry = table.entries[(row.label, column.label)]
            ours = entry.ours
            writer.writerow(
                [
                    row.label,
                    column.label,
                    "" if entry.paper is None else entry.paper,
                    "" if ours is None else ours.mean,
                    "" if ours is None or ours.std is None else ours.std,
                    0 if ours is None else ours.n,
                    table.best.get(column.label) == row.label,
                    entry.indistinguishable_from_best,
                    entry.test or "",
                    entry.collapsed,
                ]
            )
    return out.getvalue()


RENDERERS = {"md": to_markdown, "tex": to_latex, "html": to_html, "csv": to_csv}
