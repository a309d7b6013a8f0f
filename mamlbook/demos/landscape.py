"""Demo: how the meta-loss landscape changes with the number of inner steps (MAML chapter).

A two-parameter model ``ŷ = softplus(a·x + b)`` (`SoftplusUnit`, θ = (a, b)) and a task
family of the same form: task t is ``y = softplus(a_t x + b_t)`` on ``x ∈ [−2, 2]``
(``TASKS``), loss the MSE. The figure is the meta-loss

    M_k(θ) = Σ_t L_t(U_t^(k)(θ)),   U_t^(k) = k SGD steps of size α on task t from θ,

over a grid of θ, for k = 0, 1, ..., 20 (support set = query set: one loss per task).
``k = 0`` is joint training (the sum of the task losses at θ); as k grows, the basin
widens around initialisations from which every task is reachable in k steps. Computed
with the package's `mamlbook.functional.adapt` and `task_losses`, all grid points and
tasks in one batch.

Static version: the 21 frames as log10(M_k) on a 41 × 41 grid, quantised to 8 bits per
value (base64, ~47 KB), drawn as a heat map with contours by JavaScript; one slider.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor, nn

from .. import checks
from ..functional import adapt, task_losses
from . import _html, _live

TASKS = ((1.5, 0.5), (-1.5, 0.5), (0.5, -1.0), (-0.5, 1.0))  # (a_t, b_t)
INNER_LR = 0.5
MAX_STEPS = 20
WINDOW = (-3.0, 3.0)   # both axes
SHOTS = 12
MAX_BYTES = 64_000


class SoftplusUnit(nn.Module):
    """``ŷ = softplus(a·x + b)``, parameters ``a``, ``b`` (scalars, or ``(T,)`` task-batched).

    Input ``(N, 1)`` or ``(T, N, 1)``; output the same shape.
    """

    task_batched = True  # see mamlbook.functional.task_forward

    def __init__(self, a: float = 0.0, b: float = 0.0):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(float(a), dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(float(b), dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        shape = (-1,) + (1,) * (x.ndim - 1) if self.a.ndim else ()
        return nn.functional.softplus(self.a.reshape(shape) * x + self.b.reshape(shape))


def task_data() -> tuple[Tensor, Tensor]:
    """``x (T, SHOTS, 1)`` on [−2, 2] and ``y = softplus(a_t x + b_t)`` (float64)."""
    ab = torch.tensor(TASKS, dtype=torch.float64)
    x = torch.linspace(-2, 2, SHOTS, dtype=torch.float64).expand(len(TASKS), SHOTS).unsqueeze(-1)
    return x, nn.functional.softplus(ab[:, :1, None] * x + ab[:, 1:, None])


def meta_loss_grid(n: int = 41, max_steps: int = MAX_STEPS, inner_lr: float = INNER_LR) -> dict:
    """``M_k(θ)`` for k = 0..max_steps on an ``n × n`` grid over ``WINDOW``².

    Returns ``a (n,)``, ``b (n,)`` (the axes) and ``loss (max_steps + 1, n, n)`` with
    ``loss[k, j, i] = M_k(a_i, b_j)``.
    """
    checks.int_in_range("n", n, 2, 200)
    checks.int_in_range("max_steps", max_steps, 0, 100)
    checks.positive_float("inner_lr", inner_lr)
    return _grid(n, max_steps, inner_lr)


@functools.lru_cache(maxsize=4)
def _grid(n: int, max_steps: int, inner_lr: float) -> dict:
    axis = torch.linspace(*WINDOW, n, dtype=torch.float64)
    bb, aa = torch.meshgrid(axis, axis, indexing="ij")          # (n, n): row j = b_j, column i = a_i
    x, y = task_data()
    T = x.shape[0]
    # one "task copy" per (grid point, task): parameters (n*n*T,), data repeated per grid point
    params = {"a": aa.reshape(-1).repeat_interleave(T), "b": bb.reshape(-1).repeat_interleave(T)}
    params = {k: v.clone().requires_grad_() for k, v in params.items()}
    xs, ys = x.repeat(n * n, 1, 1), y.repeat(n * n, 1, 1)
    model, frames = SoftplusUnit(), []
    for k in range(max_steps + 1):
        with torch.no_grad():
            frames.append(task_losses(model, params, xs, ys).view(n, n, T).sum(-1))
        if k < max_steps:
            params, _ = adapt(model, params, xs, ys, inner_lr=inner_lr, inner_steps=1, create_graph=False)
    return {"a": axis, "b": axis, "loss": torch.stack(frames)}


def quantised_frames(grid: dict) -> tuple[bytes, list[tuple[float, float]]]:
    """log10 of each frame scaled to 0..255 per frame: ``(bytes (frames·n·n,), [(lo, hi)] per frame)``."""
    logs = grid["loss"].clamp_min(1e-12).log10()
    lo, hi = logs.flatten(1).min(1).values, logs.flatten(1).max(1).values
    q = ((logs - lo[:, None, None]) / (hi - lo).clamp_min(1e-12)[:, None, None] * 255).round().to(torch.uint8)
    return q.numpy().tobytes(), [(round(float(a), 5), round(float(b), 5)) for a, b in zip(lo, hi)]


def grid_minimum(grid: dict, k: int) -> tuple[float, float, float, bool]:
    """The grid point of smallest ``M_k``: ``(a, b, M_k(a, b), on_edge)``; ``on_edge``: it
    lies on the window's border, so the meta-loss may fall further outside the window."""
    n = grid["a"].numel()
    j, i = divmod(int(grid["loss"][k].argmin()), n)
    return float(grid["a"][i]), float(grid["b"][j]), float(grid["loss"][k, j, i]), bool({i, j} & {0, n - 1})


#: What the readout adds when the grid's minimum is on its border (both demos' words).
EDGE_NOTE = " (on the window's edge: lower values may lie outside it)"


def describe_minimum(k: int, a: float, b: float, loss: float, on_edge: bool) -> str:
    """The live demo's readout (the static page's JavaScript adds the same `EDGE_NOTE`)."""
    return f"k = {k}: smallest meta-loss {loss:.4f} at θ = ({a:.2f}, {b:.2f})" + (EDGE_NOTE if on_edge else "")


def draw(k: int):
    checks.int_in_range("k", k, 0, MAX_STEPS)
    g = meta_loss_grid()
    fig, (ax,) = _live.new_figure(1, width=4.6, height=4.0)
    a, b, z = g["a"].numpy(), g["b"].numpy(), g["loss"][k].log10().numpy()
    im = ax.pcolormesh(a, b, z, shading="gouraud", cmap="viridis")
    ax.contour(a, b, z, levels=12, colors="w", linewidths=0.5, alpha=0.7)
    fig.colorbar(im, ax=ax, label="log10 meta-loss")
    a_min, b_min, loss_min, on_edge = grid_minimum(g, k)
    ax.plot(a_min, b_min, "r*", ms=12, label="grid minimum")
    ax.plot(*torch.tensor(TASKS).T, "wx", ms=7, mew=2, label="task parameters")
    ax.set(xlabel="a", ylabel="b", title=rf"$\sum_t L_t(U_t^{{({k})}}(\theta))$, α = {INNER_LR}")
    ax.legend(fontsize=7, loc="lower left")
    return fig, describe_minimum(k, a_min, b_min, loss_min, on_edge)


def live(k: int = 0):
    """One slider: inner steps k = 0..20 (the grid is computed once, ~1 s, and cached)."""
    checks.int_in_range("k", k, 0, MAX_STEPS)
    return _live.assemble({"k": _live.slider("inner steps k", 0, MAX_STEPS, 1, k, integer=True)}, draw)


JS = r"""
const n = DATA.n, q = MB.bytes(DATA.frames), ax = MB.linspace(DATA.window[0], DATA.window[1], n);
const ctl = MB.controls(root, draw);
function draw(v) {
  const k = Math.round(v.k), [lo, hi] = DATA.ranges[k], ctx = MB.setup(canvas);
  const Z = Float64Array.from(q.subarray(k * n * n, (k + 1) * n * n), (u) => lo + (hi - lo) * u / 255);
  // narrow: a smaller square, the colour bar beside it, the legend below
  const narrow = MB.narrow(canvas), x0 = narrow ? 40 : 50, S = narrow ? 240 : 330, bar = x0 + S + (narrow ? 12 : 15);
  const p = MB.panel(ctx, [x0, 24, S, S], DATA.window, DATA.window);
  MB.heat(p, Z, n, n, lo, hi);
  MB.clip(p, () => { MB.contours(p, Z, ax, ax, 12, 'rgba(255,255,255,0.7)');
    DATA.tasks.forEach(([a, b]) => MB.dot(p, a, b, 5, '#fff', '#000', 'tri'));
    let best = 0; Z.forEach((z, i) => { if (z < Z[best]) best = i; });
    MB.dot(p, ax[best % n], ax[Math.floor(best / n)], 9, '#d62728', '#fff', 'star');
    const i = best % n, j = Math.floor(best / n), edge = [i, j].some((u) => u === 0 || u === n - 1);
    root.mbLast = {k, argmin: [ax[i], ax[j]], min_log10: Z[best], edge}; });
  MB.frame(p, `meta-loss after k = ${k} inner steps (log10)`, 'a', 'b');
  for (let i = 0; i < 100; i++) { const [r, g, b] = MB.viridis(i / 99); ctx.fillStyle = `rgb(${r},${g},${b})`; ctx.fillRect(bar, 24 + S - S / 100 * (i + 1), 14, S / 100 + 0.1); }
  MB.text(ctx, MB.fmt(hi, 2), bar + 19, 28, {align: 'left'}); MB.text(ctx, MB.fmt(lo, 2), bar + 19, 20 + S, {align: 'left'});
  const [lx, ly] = narrow ? [x0, 24 + S + 42] : [450, 40];
  MB.text(ctx, '★ grid minimum', lx, ly, {align: 'left'}); MB.text(ctx, '▲ the tasks\' (aₜ, bₜ)', lx, ly + 16, {align: 'left'});
  const [a, b] = root.mbLast.argmin;
  MB.say(readout, `k = ${k}: smallest meta-loss ≈ ${MB.fmt(Math.pow(10, root.mbLast.min_log10), 4)} at θ = (${MB.fmt(a, 2)}, ${MB.fmt(b, 2)})`
    + (root.mbLast.edge ? DATA.edge_note : ''));
}
ctl.fire();
"""


#: The canvas's accessible name (`_html.render`'s ``label``).
LABEL = ("Heat map of the meta-loss over the initial parameters (a, b) after k inner steps, with the "
         "tasks' own parameters and the grid minimum")


def static(k: int = 0) -> _html.StaticDemo:
    """21 precomputed frames (8-bit log10 meta-loss on a 41 × 41 grid) and one slider, drawn in JS."""
    checks.int_in_range("k", k, 0, MAX_STEPS)
    g = meta_loss_grid()
    frames, ranges = quantised_frames(g)
    data = {"n": g["a"].numel(), "frames": _html.b64_uint8(np.frombuffer(frames, np.uint8)), "ranges": ranges, "window": list(WINDOW),
            "tasks": [list(t) for t in TASKS], "edge_note": EDGE_NOTE}
    caption = (f"Σₜ Lₜ(Uₜ⁽ᵏ⁾(θ)) for the model softplus(a·x + b) on {len(TASKS)} tasks of the same form (▲), after "
               f"k SGD steps of size α = {INNER_LR} on each task; colours rescaled per frame.")
    return _html.render("landscape", _html.slider("k", "inner steps k", 0, MAX_STEPS, 1, k, digits=0), (580, 385),
                        data, JS, caption, MAX_BYTES, narrow_size=(340, 336),
                        label=LABEL, title='the meta-loss landscape after k inner steps')
