"""What the chapters show besides figures: package source code and small tables.

Both return objects with a Markdown representation. Jupyter (and JupyterLab) render it as
highlighted code or a table; the book's build (MyST-NB) parses it as MyST, so the code is
highlighted by the book's own theme (light and dark) and the table is a real table that
fits the text column, instead of plain text cut at the right edge.
"""
from __future__ import annotations

import inspect
import re
import textwrap
from typing import Any, Iterable, Mapping, Sequence


class Markdown:
    """Markdown text that Jupyter and the book render (``_repr_markdown_``)."""

    def __init__(self, text: str):
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:  # plain-text front ends (a terminal, nbval's comparison)
        return self.text


def show_source(*objs: Any, start: str | None = None) -> Markdown:
    """The source code of package functions, classes or methods, highlighted.

    Each of ``objs`` is anything `inspect.getsource` accepts; each is shown exactly as it
    is in its file (dedented), under a comment naming the file and line. ``start`` shows
    only the part of a single object's source from the first line containing that text.
    """
    if not objs:
        raise ValueError("show_source needs at least one function, class or method")
    if start is not None and len(objs) != 1:
        raise ValueError(f"start selects part of ONE object's source, got {len(objs)} objects")
    blocks = []
    for obj in objs:
        try:
            lines, first = inspect.getsourcelines(obj)
        except (TypeError, OSError) as err:
            raise TypeError(f"show_source needs functions, classes or methods defined in a file, got {obj!r}") from err
        module = getattr(inspect.getmodule(obj), "__name__", "")
        where = module.replace(".", "/") + ".py" if module else inspect.getsourcefile(obj)
        if start is not None:
            hits = [i for i, line in enumerate(lines) if start in line]
            if not hits:
                raise ValueError(f"start={start!r} does not occur in the source of {obj!r}")
            first, lines = first + hits[0], lines[hits[0]:]
        source = textwrap.dedent("".join(lines)).rstrip("\n")
        fence = "````" if "```" in source else "```"
        blocks.append(f"{fence}python\n# {where}, line {first}\n{source}\n{fence}")
    return Markdown("\n\n".join(blocks))


# A cell that holds numbers only: "0.590", "−0.038 ± 0.031", "2/600", "95.2, 94.9", "1.3e-01",
# "+51.0 ± 2.8", "14.66×", "1.0 (1.0–1.0)", "−0.038 ± 0.031 [−6%; 52%]": no letters; "–" is a missing one.
_NUMBER_CELL = re.compile(r"[+−]?\.?\d[\d.,/ \u202f±×%()\[\];+−–]*")
_EXPONENT = re.compile(r"(?<=\d)e[+−-]\d+")
# A hyphen that is a minus sign: before a number, not inside a word or a number ("5-way"), or
# an exponent's ("1e-04": a hyphen is also where a browser may break the line).
_HYPHEN_MINUS = re.compile(r"(?<![\w.])-(?=\.?\d)|(?<=\de)-(?=\d)")


def _is_number(text: str) -> bool:
    return bool(_NUMBER_CELL.fullmatch(_EXPONENT.sub("", text.strip("*"))))  # bold too: "**110.7**"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], caption: str | None = None) -> Markdown:
    """A Markdown table: ``header`` names the columns, each row gives one cell per column.

    Cells are formatted with ``str``; numbers should be formatted by the caller (the page
    shows what the chapter printed, typeset: a hyphen before a number or in an exponent
    is a minus sign, "−0.108", "[−6%; 52%]", "3.3e−16"; "±" is held to its numbers by
    narrow no-break spaces, so that "0.590 ± 0.053" never breaks over two lines; a cell
    "-" (no value) is "–"; a header "k = 1" does not break at its spaces). A ``|`` inside a cell is escaped. A column after the first with at least one number whose cells all hold
    numbers only ("0.590 ± 0.053", "2/600", "**110.7**") or nothing ("–", "") is
    right-aligned, so that its digits line up; the first column names the rows.
    """
    if not header:
        raise ValueError("header must name at least one column")
    rows = [list(row) for row in rows]
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"rows[{i}] has {len(row)} cells, expected {len(header)} (one per header column)")

    def escape(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ").strip()

    def cell(value: Any) -> str:
        text = escape(value)
        if text == "-":
            return "–"
        return _HYPHEN_MINUS.sub("−", text).replace(" ± ", "\u202f±\u202f")

    body = [[cell(v) for v in row] for row in rows]

    def right_aligned(j: int) -> bool:
        values = [row[j] for row in body if row[j] not in ("", "–")]
        return j > 0 and bool(values) and all(map(_is_number, values))

    lines = []
    if caption:
        lines += [f"**{escape(caption)}**", ""]
    # a header "k = 25" on one line (narrow columns of numbers would break it after "k")
    lines.append("| " + " | ".join(escape(h).replace(" = ", "\u00a0=\u00a0") for h in header) + " |")
    lines.append("|" + "|".join("--:" if right_aligned(j) else "---" for j in range(len(header))) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return Markdown("\n".join(lines))


def adaptation_table(curves: Mapping[str, Any], steps: Sequence[int] = (1, 5, 10), *,
                     extra: Mapping[str, Mapping[str, Mapping[int, Any]]] | None = None,
                     caption: str | None = None) -> Markdown:
    """The book's table of few-shot results: a row per method and number of test-time steps.

    ``curves`` maps a method (a key of `mamlbook.plotting.LABELS`, shown by its label, or
    any name, shown as is) to its ``(T, max_steps + 1)`` query losses from
    `mamlbook.adaptation_curve`. Columns: the mean ± 95% interval and the median over the
    tasks that never diverged, and how many of the ``T`` did (`mamlbook.protocol.summarize`,
    the book's rule). ``extra`` adds columns: ``{column: {method: {steps: cell}}}``, e.g.
    a paper's numbers, each shown with ``str`` (pass them formatted: ``"0.30"``, not
    ``0.3``); a cell it lacks is shown as "–". The caption, unless given, says what the
    cells hold (and on how many tasks, when every curve has the same number).
    """
    from .plotting import LABELS
    from .protocol import summarize

    extra = dict(extra or {})
    for column, cells in extra.items():
        unknown = sorted(set(cells) - set(curves))
        if unknown:
            raise ValueError(f"extra[{column!r}] names {unknown}, which are not keys of curves "
                             f"({sorted(curves)})")
    header = ["method", "steps", "mean ± 95% CI", "median", "diverged", *extra]
    rows = []
    for name, curve in curves.items():
        summary = summarize(curve, list(steps))
        for k in steps:
            s = summary[k]
            cells = ([f"{s.mean:.3f} ± {s.ci95:.3f}", f"{s.median:.3f}"] if s.mean is not None
                     else ["–", "–"])
            rows.append([LABELS.get(name, name), k, *cells, f"{s.diverged}/{s.num_tasks}",
                         *(extra[c].get(name, {}).get(k, "–") for c in extra)])
    if caption is None:
        sizes = {len(curve) for curve in curves.values()}
        caption = ("query loss after k test-time steps" + (f" on {sizes.pop()} tasks" if len(sizes) == 1 else "")
                   + ": mean ± 95% interval and median over the tasks on which no step diverged")
    return table(header, rows, caption=caption)


def signed(text: str) -> str:
    """A number formatted with its sign (``f"{x:+.3f}"``, a percentage too) as a table
    shows it: a minus sign, "−0.010", and no sign where it rounds to zero ("0.000", not
    "−0.000")."""
    return text.lstrip("+-") if float(text.rstrip("%")) == 0 else _HYPHEN_MINUS.sub("−", text)


def paired_table(differences, caption: str | None = None, *, details: bool = False) -> Markdown:
    """The table of `mamlbook.protocol.paired_differences`: a row per pair ``a − b``, a
    column per number of steps, each cell the mean difference (signed, "+0.008",
    "−0.002") ± its 95% interval; with ``details``, then "[−6%; 52%]": the mean
    difference as a share of ``b``'s mean, and the share of tasks on which ``a`` is
    lower. The caption, unless given, says over how many of the tasks the differences
    are taken (and what the brackets hold)."""
    cells = differences.cells
    steps = list(next(iter(cells.values())))
    kept = differences.kept
    if caption is None:
        caption = (f"task by task: mean difference ± 95% CI over the {int(kept.sum())} of "
                   f"{kept.numel()} tasks no run diverged on")
        if details:
            caption += ("; in brackets, the difference as a share of the second run's mean, "
                        "and the share of tasks on which the first run's loss is lower")

    def cell(label: str, k: int) -> str:
        step = cells[label][k]
        text = f"{signed(f'{step.mean:+.3f}')} ± {step.ci95:.3f}"
        if details:
            text += f" [{signed(f'{step.relative:+.0%}')}; {step.lower:.0%}]"
        return text

    header = ["difference", *(f"{k} step" + ("" if k == 1 else "s") for k in steps)]
    return table(header, [[label, *(cell(label, k) for k in steps)] for label in cells], caption=caption)
