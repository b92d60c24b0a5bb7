"""The results README: what the results store is, then every written table and plot, linked by relative
path. Deterministic: sorted, no timestamps."""

import os
from pathlib import Path

from peftbench.report.plots import describe
from peftbench.report.render import RENDERERS
from peftbench.report.specs import SPECS

INTRODUCTION = """# results/

The local results store: one JSON record per run, at `<task>/<model>/<method>/<run id>.json`,
written atomically by `peftbench.recipe.run`. Records are the source of truth for reports. They are
git-ignored; set `results_dir=...` or `PEFTBENCH_RESULTS_DIR` to keep them elsewhere.
"""

GENERATED_HEADING = "## Reports"


def relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), start.resolve())).as_posix()


def table_lines(paths: list[Path], start: Path) -> list[str]:
    """One line per table: its name and a link to each rendering, in the renderers' order."""
    by_stem = {}
    for path in paths:
        if path.suffix.lstrip(".") in RENDERERS:
            by_stem.setdefault(path.stem, {})[path.suffix.lstrip(".")] = path
    lines = []
    for stem, renderings in sorted(by_stem.items()):
        links = " · ".join(f"[{ext}]({relative(renderings[ext], start)})" for ext in RENDERERS if ext in renderings)
        title = f"{SPECS[stem].title} " if stem in SPECS else ""
        lines.append(f"- {title}(`{stem}`): {links}")
    return lines


def plot_lines(paths: list[Path], start: Path) -> list[str]:
    """Each PNG embedded, with its caption and a link to its SVG where one was written."""
    svgs = {path.with_suffix(""): path for path in paths if path.suffix == ".svg"}
    lines = []
    for png in sorted((path for path in paths if path.suffix == ".png"), key=lambda p: (p.stem, str(p))):
        svg = svgs.get(png.with_suffix(""))
        vector = f" ([svg]({relative(svg, start)}))" if svg else ""
        lines += [
            f"#### {png.stem}",
            "",
            f"{describe(png.stem)}{vector}".strip(),
            "",
            f"![{png.stem}]({relative(png, start)})",
            "",
        ]
    return lines


def explorer_line(explorer: Path, start: Path) -> str:
    return (
        f"[The results explorer]({relative(explorer, start)}): every run in one page that opens from disk, "
        f"filterable and sortable, with Pareto plots against a chosen cost and links to the records."
    )


def write_index(results_dir: Path, written_paths: list[Path], explorer: Path | None = None) -> Path:
    """<results_dir>/README.md: the introduction, then the explorer, tables and plots of the last report."""
    results_dir = Path(results_dir)
    paths = [Path(p) for p in written_paths]
    tables, plots = table_lines(paths, results_dir), plot_lines(paths, results_dir)
    lines = [
        INTRODUCTION.rstrip("\n"),
        "",
        GENERATED_HEADING,
        "",
        "Written by `python -m peftbench.report` from the records; rewritten on every run.",
        "",
    ]
    if explorer is not None:
        lines += [explorer_line(explorer, results_dir), ""]
    lines += ["### Tables", "", *(tables or ["(none)"]), ""]
    lines += ["### Plots", "", *(plots or ["(none)", ""])]
    results_dir.mkdir(parents=True, exist_ok=True)
    index = results_dir / "README.md"
    index.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")
    return index
