"""The live (Jupyter) layer shared by the demos: sliders → pure function → matplotlib PNG.

Figures are drawn on a bare ``matplotlib.figure.Figure`` (no pyplot state, any backend)
and shown in an ``ipywidgets.Image``, so a demo behaves the same in JupyterLab, the
classic notebook and VS Code, and constructs without a kernel (for tests).
"""
from __future__ import annotations

import io
from typing import Callable

from matplotlib.figure import Figure

from ..plotting import BOOK_WIDTH


def widgets():
    """The ``ipywidgets`` module, or an ImportError that says how to get it."""
    try:
        import ipywidgets
    except ImportError as err:  # pragma: no cover - ipywidgets is in requirements.txt
        raise ImportError("the live demos need ipywidgets: pip install 'mamlbook[widgets]'") from err
    return ipywidgets


def new_figure(ncols: int = 1, width: float = 4.0, height: float = 3.4) -> tuple[Figure, list]:
    """A figure of ``ncols`` panels with the proportions ``width × height`` (inches) each,
    scaled to the book's figure width (`mamlbook.plotting.BOOK_WIDTH`), like every figure."""
    scale = BOOK_WIDTH / (width * ncols)
    fig = Figure(figsize=(BOOK_WIDTH, height * scale), constrained_layout=True)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


#: CSS pixels per inch: a figure is shown at its natural size, BOOK_WIDTH inches.
CSS_DPI = 96


def png(fig: Figure, dpi: int = 2 * CSS_DPI) -> bytes:
    """PNG of ``fig`` at twice the screen resolution: sharp on high-density screens."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def slider(description: str, low: float, high: float, step: float, value: float, integer: bool = False):
    w = widgets()
    cls = w.IntSlider if integer else w.FloatSlider
    return cls(value=value, min=low, max=high, step=step, description=description, continuous_update=False,
               style={"description_width": "initial"}, layout=w.Layout(width="250px"))


def assemble(controls: dict, draw: Callable[..., tuple[Figure, str]], buttons: dict | None = None):
    """A VBox of ``controls`` (name → widget), a figure image and a readout.

    ``draw(**values)`` returns ``(figure, readout_html)``; it runs once now and again
    whenever a control changes. ``buttons`` maps a label to ``fn(controls)`` (e.g. set
    sliders), which triggers a redraw through the sliders it moves. The returned box
    has ``.image``, ``.readout`` and ``.controls`` for tests and chapters.
    """
    w = widgets()
    # Shown at its natural size (BOOK_WIDTH inches), never stretched; narrower screens shrink it.
    image = w.Image(format="png", layout=w.Layout(width=f"{BOOK_WIDTH * CSS_DPI:.0f}px", max_width="100%"))
    readout = w.HTML()

    held = []  # non-empty while a button moves several controls: redraw once at the end

    def redraw(_change=None):
        if held:
            return
        fig, text = draw(**{name: c.value for name, c in controls.items()})
        image.value = png(fig)
        readout.value = text

    def press(fn):
        held.append(True)
        try:
            fn(controls)
        finally:
            held.clear()
        redraw()

    for c in controls.values():
        c.observe(redraw, names="value")
    row = list(controls.values())
    for label, fn in (buttons or {}).items():
        b = w.Button(description=label)
        b.on_click(lambda _b, fn=fn: press(fn))
        row.append(b)
    redraw()
    box = w.VBox([w.HBox(row, layout=w.Layout(flex_flow="row wrap")), image, readout])
    box.image, box.readout, box.controls = image, readout, controls
    return box
