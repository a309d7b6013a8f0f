"""Which cells of a notebook draw a matplotlib figure, and whether a figure's alt text
describes it: the rules, in one place.

Used by the browser tests (`tests/browser/browsing.py`: every figure reaches the page,
with a description) and the unit tests of the stored chapters (`tests/test_style.py`:
every figure cell carries alt text).

>>> draws_figure("fig, axes = mb.plotting.figure(ncols=2)")
'mb.plotting.figure'
>>> alt_text_problem("a plot")
'6 characters, fewer than 40'
"""
from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path

IMAGE_MIMES = ("image/png", "image/svg+xml")
# Tags with which MyST-NB leaves a cell's output off the page.
HIDDEN_OUTPUT_TAGS = {"remove-output", "remove-cell"}
# pyplot calls that create or draw a figure; `plt.close` without one of these does not.
PYPLOT_DRAWING = {
    "show", "figure", "subplots", "subplot", "subplot_mosaic", "imshow", "matshow",
    "plot", "scatter", "bar", "barh", "hist", "hist2d", "contour", "contourf",
    "pcolormesh", "semilogx", "semilogy", "loglog", "errorbar", "fill_between",
    "stem", "step", "pie", "boxplot", "violinplot", "quiver", "streamplot",
}  # fmt: skip
# Output text that a figure was made and not shown (the symptom of issue 11: a
# non-inline backend in the kernel, or a Figure object echoed as text).
UNSHOWN_FIGURE = re.compile(r"^<Figure size [^>]*>|FigureCanvas\w* is non-interactive", re.M)


def _python_source(source: str) -> str:
    """A cell's source without IPython magics and shell escapes, for ``ast``."""
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line
        for line in source.splitlines()
    )


def _dotted(node: ast.AST) -> str:
    """``mb.plotting.figure`` for the func of ``mb.plotting.figure(...)``; '' otherwise."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def draws_figure(source: str) -> str | None:
    """The call that makes this cell draw a matplotlib figure, or None.

    The rule, on the cell's Python (magics dropped): a call of a pyplot drawing
    function (``plt.show``, ``plt.subplots``, ``plt.plot``, ... ; ``PYPLOT_DRAWING``),
    of ``.imshow(`` on anything, or of a figure-making helper of the book's plotting
    module (``mb.plotting.figure`` or any ``plotting.plot_*``; attribute reads such
    as ``mb.plotting.COLORS[...]`` and style set-up calls are not drawing). A cell
    that closes its figure (``plt.close``) and never shows it (``plt.show``,
    ``display``) draws nothing for the reader.
    """
    try:
        tree = ast.parse(_python_source(source))
    except SyntaxError:
        return None
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if not name and isinstance(node.func, ast.Attribute):
            name = "?." + node.func.attr  # e.g. axes[0, 1].imshow(...)
        calls.append(name.split("."))
    closes = any(parts[-2:] in (["plt", "close"], ["pyplot", "close"]) for parts in calls)
    if closes and not {parts[-1] for parts in calls} & {"show", "display"}:
        return None
    for parts in calls:
        name = ".".join(parts)
        if parts[-1] in ("imshow", "matshow"):
            return name
        if len(parts) >= 2 and parts[-2] in ("plt", "pyplot") and parts[-1] in PYPLOT_DRAWING:
            return name
        if len(parts) >= 2 and parts[-2] == "plotting" and (
            parts[-1] in ("figure", "subplots") or parts[-1].startswith("plot_")
        ):
            return name
    return None


def _output_text(output: dict) -> str:
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    else:
        text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else text


@dataclasses.dataclass
class FigureCell:
    index: int  # position among the notebook's cells
    reason: str  # why it draws: the call, or the output that gives it away
    images: int  # image/png or image/svg+xml outputs
    on_page: bool  # False when a tag keeps its output off the page


def figure_cells(notebook: Path) -> list[FigureCell]:
    """Every code cell that draws a matplotlib figure, by source or by its outputs."""
    cells = json.loads(notebook.read_text())["cells"]
    found = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        outputs = cell.get("outputs", [])
        images = sum(
            1 for o in outputs if any(m in o.get("data", {}) for m in IMAGE_MIMES)
        )
        reason = draws_figure(source)
        if reason is None:
            unshown = [m.group(0) for o in outputs for m in [UNSHOWN_FIGURE.search(_output_text(o))] if m]
            reason = f"output {unshown[0]!r}" if unshown else None
        if reason is None and images:
            reason = "image output"
        if reason is not None:
            tags = set(cell.get("metadata", {}).get("tags", []))
            found.append(FigureCell(i, reason, images, not (tags & HIDDEN_OUTPUT_TAGS)))
    return found


#: characters: a sentence that says what the figure shows
MIN_ALT_TEXT = 40


def alt_text_problem(alt: str) -> str | None:
    """Why ``alt`` does not describe a figure (too short, or a file name, MyST-NB's
    default), or None."""
    if len(alt.strip()) < MIN_ALT_TEXT:
        return f"{len(alt.strip())} characters, fewer than {MIN_ALT_TEXT}"
    if "_images/" in alt or alt.strip().endswith((".svg", ".png")):
        return "a file name"
    return None
