"""Figures the chapters share. Each function draws on a given matplotlib ``Axes``."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

COLORS = {"maml": "C0", "fomaml": "C1", "reptile": "C2", "imaml": "C3", "pretrain": "C7", "truth": "k"}
LABELS = {"maml": "MAML", "fomaml": "first-order MAML", "reptile": "Reptile", "imaml": "iMAML",
          "pretrain": "pretrained", "truth": "ground truth"}


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def figure(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.2, **kwargs):
    """A figure with a grid of axes sized for the book's column."""
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, constrained_layout=True, **kwargs)


def plot_task_fits(ax, x_grid, truth, predictions: Mapping[int, torch.Tensor], x_support, y_support, *,
                   title: str = "", color: str = "C0") -> None:
    """One task: the true function, the support points, and predictions after each step count.

    ``x_grid (N,)``, ``truth (N,)``, ``predictions {steps: (N,)}``, support ``(K,)``.
    """
    ax.plot(_np(x_grid), _np(truth), color="k", lw=1.5, label="ground truth")
    shades = np.linspace(0.35, 1.0, len(predictions))
    for alpha, (steps, pred) in zip(shades, sorted(predictions.items())):
        ax.plot(_np(x_grid), _np(pred), color=color, alpha=float(alpha), ls="--" if steps == 0 else "-",
                label=f"after {steps} step{'s' if steps != 1 else ''}")
    ax.scatter(_np(x_support), _np(y_support), marker="^", color="C3", zorder=5, label="support points")
    ax.set(xlabel="x", ylabel="y", title=title)
    ax.legend(fontsize=7, loc="lower right")


def plot_adaptation_curves(ax, curves: Mapping[str, torch.Tensor], *, reference: Mapping[str, Sequence] | None = None,
                           ylabel: str = "query MSE") -> None:
    """Mean ± 95% interval of ``(T, steps+1)`` curves per method; optional paper points ``{method: [(step, value)]}``."""
    for name, curve in curves.items():
        c = _np(curve).astype(float)
        mean, half = c.mean(0), 1.96 * c.std(0, ddof=1) / np.sqrt(c.shape[0])
        steps = np.arange(c.shape[1])
        color = COLORS.get(name)
        ax.plot(steps, mean, marker="o", ms=3, color=color, label=LABELS.get(name, name))
        ax.fill_between(steps, mean - half, mean + half, color=color, alpha=0.2)
    for name, points in (reference or {}).items():
        xs, ys = zip(*points)
        ax.scatter(xs, ys, marker="x", s=40, color=COLORS.get(name), label=f"{LABELS.get(name, name)} (paper)")
    ax.set(xlabel="gradient steps at test time", ylabel=ylabel)
    ax.legend(fontsize=8)


def plot_loss_history(ax, values: Sequence[float], *, window: int = 100, label: str | None = None,
                      color: str | None = None, log: bool = True) -> None:
    """A training curve: raw values faint, running mean over ``window`` solid."""
    v = np.asarray(values, dtype=float)
    ax.plot(v, color=color, alpha=0.2, lw=0.5)
    if len(v) >= window:
        smooth = np.convolve(v, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window - 1, len(v)), smooth, color=color, label=label)
    ax.set(xlabel="meta-iteration", ylabel="meta-loss")
    if log:
        ax.set_yscale("log")
    if label:
        ax.legend(fontsize=8)
