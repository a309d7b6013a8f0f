"""Figures the chapters share: how every figure looks, and the plots drawn on a given ``Axes``.

`use_book_figures` is the one place that decides how the book's figures look; each
chapter's setup cell calls it. `figure` makes every figure exactly `BOOK_WIDTH` inches
wide, so that every figure is shown at its natural size on the page (1 inch of figure =
1 inch of page), never rescaled by a different factor than its neighbours.
"""
from __future__ import annotations

import numbers
from typing import Mapping, Sequence

import matplotlib
import matplotlib.patches
import matplotlib.pyplot as plt
import numpy as np
import torch

from . import checks, protocol

#: Width of every figure in inches: the book's text column at 1280 px (SVG: 1 in = 96 px).
BOOK_WIDTH = 7.0

#: Matplotlib settings of every figure in the book.
BOOK_STYLE = {
    "figure.figsize": (BOOK_WIDTH, 3.2),
    "figure.dpi": 96,
    "savefig.dpi": 192,  # PNG fallback (live widgets, other front ends): sharp on 2x screens
    "figure.facecolor": "white",
    "font.size": 9.5,
    "axes.titlesize": 10,
    "axes.labelsize": 9.5,
    "legend.fontsize": 8,
    "legend.handlelength": 3.5,  # long enough to show a dashed or dotted line as such
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "svg.fonttype": "path",  # text as outlines: the same glyphs on every reader's machine
}

COLORS = {"maml": "C0", "fomaml": "C1", "reptile": "C2", "imaml": "C3", "pretrain": "C7", "truth": "k",
          "anil": "C4", "meta_sgd": "C5", "mamlpp": "C6", "protonet": "C8"}
#: One marker per method beside its colour, so that lines are told apart without colour.
MARKERS = {"maml": "o", "fomaml": "s", "reptile": "^", "imaml": "D", "pretrain": "v", "truth": "",
           "anil": "P", "meta_sgd": "X", "mamlpp": "*", "protonet": "p"}
LABELS = {"maml": "MAML", "fomaml": "first-order MAML", "reptile": "Reptile", "imaml": "iMAML",
          "pretrain": "pretrained", "truth": "ground truth", "anil": "ANIL", "meta_sgd": "Meta-SGD",
          "mamlpp": "MAML++", "protonet": "Prototypical Networks"}

#: The map of meta-learning (chapter 10): family -> (what is meta-learned, methods). Methods marked
#: with ``*`` are implemented in the package (the others are named for orientation only).
TAXONOMY = {
    "metric-based": ("an embedding; a new task is\nsolved by comparing with\nits labelled examples",
                     ["Matching Networks", "Prototypical Networks*", "Relation Networks"]),
    "model-based": ("a network that reads the\nsupport set and outputs\nthe predictor (black box)",
                    ["memory-augmented nets", "SNAIL", "conditional neural processes"]),
    "optimisation-based": ("an initialisation and/or the\ninner optimiser; a new task\nis learned by gradient steps",
                           ["MAML*, first-order MAML*", "Reptile*, iMAML*", "ANIL*, Meta-SGD*", "MAML++*"]),
}


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def use_book_figures(fmt: str = "svg") -> None:
    """Show every figure of this notebook inline, in the book's style.

    Call it once, in a chapter's setup cell. In a Jupyter kernel it switches matplotlib to
    the inline backend whatever ``MPLBACKEND`` says (``MPLBACKEND=Agg`` would otherwise
    make every ``plt.show()`` draw nothing), and emits figures as ``fmt``: ``"svg"``
    (sharp at any zoom; the book's choice) or ``"retina"`` (PNG at twice the resolution).
    Outside a kernel (scripts, tests) it only applies the style.
    """
    if fmt not in ("svg", "retina", "png"):
        raise ValueError(f"fmt must be 'svg', 'retina' or 'png', got {fmt!r}")
    matplotlib.rcParams.update(BOOK_STYLE)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        return
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return
    shell.run_line_magic("matplotlib", "inline")
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats(fmt)
    matplotlib.rcParams.update(BOOK_STYLE)  # %matplotlib inline resets some rcParams


def figure(ncols: int = 1, nrows: int = 1, height: float | None = None, **kwargs):
    """A figure `BOOK_WIDTH` inches wide with an ``(nrows, ncols)`` grid of axes.

    ``height`` is the height of one row in inches (default: 3.2 for one or two columns,
    shorter for more). Returns ``(fig, axes)`` with ``axes`` always 2-D.
    """
    if height is None:
        height = 3.2 if ncols <= 2 else max(1.9, BOOK_WIDTH / ncols * 1.05)
    return plt.subplots(nrows, ncols, figsize=(BOOK_WIDTH, height * nrows), squeeze=False,
                        constrained_layout=True, **kwargs)


def plot_task_fits(ax, x_grid, truth, predictions: Mapping[int, torch.Tensor], x_support, y_support, *,
                   title: str = "", color: str = "C0", legend: bool = True) -> None:
    """One task: the true function, the support points, and predictions after each step count.

    ``x_grid (N,)``, ``truth (N,)``, ``predictions {steps: (N,)}``, support ``(K,)``;
    ``legend=False`` leaves the legend to the caller (one for several panels, below them:
    ``fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center")``).
    """
    ax.plot(_np(x_grid), _np(truth), color="k", lw=1.5, label="ground truth")
    # step counts told apart by line style, the last solid (not by shades of one colour,
    # which vanish on a dark background)
    styles = ["--", ":", "-.", (0, (6, 2, 1, 2, 1, 2))]
    ordered = sorted(predictions.items())
    for i, (steps, pred) in enumerate(ordered):
        ax.plot(_np(x_grid), _np(pred), color=color, lw=1.2 if i < len(ordered) - 1 else 1.6,
                ls="-" if i == len(ordered) - 1 else styles[i % len(styles)],
                label=f"after {steps} step{'s' if steps != 1 else ''}")
    ax.scatter(_np(x_support), _np(y_support), marker="^", color="C3", zorder=5, label="support points")
    ax.set(xlabel="x", ylabel="y", title=title)
    if legend:
        ax.legend(fontsize=7, loc="lower right")


def plot_adaptation_curves(ax, curves: Mapping[str, torch.Tensor], *, reference: Mapping[str, Sequence] | None = None,
                           ylabel: str = "query MSE") -> None:
    """Mean ± 95% interval of ``(T, steps+1)`` curves per method; optional paper points ``{method: [(step, value)]}``."""
    for name, curve in curves.items():
        c = _np(curve).astype(float)
        mean, half = c.mean(0), protocol.ci95_quantile(c.shape[0]) * c.std(0, ddof=1) / np.sqrt(c.shape[0])
        steps = np.arange(c.shape[1])
        color = COLORS.get(name)
        ax.plot(steps, mean, marker=MARKERS.get(name, "o"), ms=3.5, color=color, label=LABELS.get(name, name))
        ax.fill_between(steps, mean - half, mean + half, color=color, alpha=0.2)
    for name, points in (reference or {}).items():
        points = list(points)
        for point in points:  # matplotlib would plot the strings "0.67", "0.38" as categories 0, 1, ...
            if (not isinstance(point, (tuple, list)) or len(point) != 2
                    or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in point)):
                raise TypeError(f"reference[{name!r}] must hold (step, value) pairs of numbers, got {point!r}")
        xs, ys = zip(*points)
        ax.scatter(xs, ys, marker="x", s=40, color=COLORS.get(name), label=f"{LABELS.get(name, name)} (paper)")
    ax.set(xlabel="gradient steps at test time", ylabel=ylabel)
    ax.legend(fontsize=8)


def plot_loss_history(ax, values: Sequence[float], *, window: int = 100, label: str | None = None,
                      color: str | None = None, log: bool = True, every: int = 1,
                      ylabel: str | None = None) -> None:
    """A training curve: raw values faint, running mean over ``window`` values solid.

    ``values[i]`` is the loss at meta-iteration ``i * every`` (``every=100`` for a
    checkpoint's ``meta_loss_every_100``), so the x-axis counts meta-iterations;
    ``ylabel`` names the loss (a baseline's training loss is no meta-loss): given, it
    replaces the axis's label; left out, an axis without one gets "meta-loss" (a second
    curve drawn on the axis keeps the first one's label)."""
    every = checks.positive_int("every", every)
    v = np.asarray(values, dtype=float)
    iterations = every * np.arange(len(v))
    (raw,) = ax.plot(iterations, v, color=color, alpha=0.2, lw=0.5)
    color = raw.get_color()  # the running mean in the raw values' colour, also when none is given
    if len(v) >= window:
        smooth = np.convolve(v, np.ones(window) / window, mode="valid")
        ax.plot(iterations[window - 1:], smooth, color=color, label=label)
    ax.set_xlabel("meta-iteration")
    if ylabel is not None or not ax.get_ylabel():
        ax.set_ylabel("meta-loss" if ylabel is None else ylabel)
    if log:
        ax.set_yscale("log")
    if label:
        ax.legend(fontsize=8)


def plot_taxonomy(ax, taxonomy: Mapping[str, tuple[str, Sequence[str]]] | None = None) -> None:
    """The three families of meta-learning side by side (`TAXONOMY`): what each meta-learns, and its methods.

    Methods implemented in the package (``*`` in `TAXONOMY`) are drawn in bold; the
    optimisation-based column, the book's subject, is shaded.
    """
    taxonomy = TAXONOMY if taxonomy is None else taxonomy
    ax.set_xlim(0, len(taxonomy))
    ax.set_ylim(0, 1)
    ax.set_axis_off()
    for i, (family, (idea, methods)) in enumerate(taxonomy.items()):
        ax.add_patch(matplotlib.patches.FancyBboxPatch(
            (i + 0.04, 0.02), 0.92, 0.96, boxstyle="round,pad=0.0,rounding_size=0.04",
            facecolor="#e8f0fa" if family == "optimisation-based" else "#f4f4f4", edgecolor="0.6"))
        ax.text(i + 0.5, 0.92, family, ha="center", va="top", fontsize=10, fontweight="bold")
        ax.text(i + 0.5, 0.80, idea, ha="center", va="top", fontsize=8, style="italic", color="0.25")
        for j, method in enumerate(methods):
            ax.text(i + 0.5, 0.44 - 0.1 * j, method.replace("*", ""), ha="center", va="top", fontsize=8.5,
                    fontweight="bold" if "*" in method else "normal")
    ax.text(len(taxonomy) / 2, -0.04, "bold: implemented in mamlbook and run in this book", ha="center",
            va="top", fontsize=7.5, color="0.35")


def plot_accuracy_curves(ax, curves: Mapping[str, Sequence[Sequence[float]]], *, up_to: int | None = None) -> None:
    """Held-out accuracy (%) against meta-iteration, one line per method.

    ``curves`` maps a method name (`COLORS`, `LABELS`) to the rows of a recipe's curve
    (``[iteration, seconds, accuracy, ...]``, `mamlbook.recipes.load_curve`);
    ``up_to`` drops the points after that iteration.
    """
    for method, rows in curves.items():
        points = [(r[0], 100 * r[2]) for r in rows if up_to is None or r[0] <= up_to]
        ax.plot(*zip(*points), marker=MARKERS.get(method, "."), ms=5, color=COLORS.get(method),
                label=LABELS.get(method, method))
    ax.set(xlabel="meta-iteration", ylabel="held-out accuracy (%)")
    ax.legend(fontsize=8)
