"""Demo: the update directions of MAML, FOMAML, Reptile and iMAML, side by side (comparison chapter).

The two quadratic tasks of `_quadratic`, as linear-regression tasks on `Linear2`, and
each method's ``grads`` from `mamlbook.get_method(name)` (the direction θ descends):

* ``maml``:    mean_t (I − αA_t)^k ∇L_t(φ_t),  φ_t = k SGD steps of size α from θ;
* ``fomaml``:  mean_t ∇L_t(φ_t);
* ``reptile``: θ − mean_t φ_t;
* ``imaml``:   mean_t (I + A_t/λ)⁻¹ ∇L_t(φ_t*),  φ_t* = argmin L_t(φ) + λ/2 ‖φ − θ‖², with
  ``λ = 1/(kα)`` (the proximal strength whose "time" 1/λ matches the inner loop's kα)
  and the inner problem solved to convergence.

For quadratic tasks every one of these is an affine function of θ, ``d(θ) = M θ + v``;
`affine_map` recovers ``(M, v)`` from three calls of the method (tested against direct
calls), so the static page can draw the exact fields for every θ from 6 numbers per
method and setting: where the field vanishes (``θ = −M⁻¹v``) is where that method's
meta-training stops.
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor

from .. import checks
from ..algorithms import get_method
from ..plotting import LABELS  # the names the book gives the methods
from . import _html, _live, _quadratic

METHODS = ("maml", "fomaml", "reptile", "imaml")
ALPHAS = tuple(round(0.1 * i, 1) for i in range(1, 11))   # static grid of α
STEPS = (1, 2, 3, 4, 5)
WINDOW = ((-2.5, 2.5), (-1.5, 3.0))
DEFAULTS = {"alpha": 0.3, "k": 2}
MAX_BYTES = 32_000


def _check(alpha, k):
    checks.float_in_range("alpha", alpha, 0.01, 1.0)
    checks.int_in_range("k", k, 1, 5)


def direction(method: str, theta: Tensor, alpha: float, k: int) -> Tensor:
    """The method's ``grads`` at ``θ (2,)`` from the package: ``(2,)``."""
    checks.one_of("method", method, set(METHODS))
    _check(alpha, k)
    As, cs = _quadratic.tasks()
    options = {}
    if method == "imaml":
        lam = 1.0 / (k * alpha)
        eig = torch.linalg.eigvalsh(As)  # gradient descent's fastest fixed step on G = L + λ/2‖φ − θ‖²
        lr = 2.0 / (2 * lam + float(eig.min() + eig.max()))
        options, alpha, k = {"lam": lam, "cg_steps": 2, "inner_tol": 1e-10}, lr, 1000  # 2-D: CG is exact in 2 steps
    step = get_method(method)(_quadratic.Linear2(), _quadratic.params(theta), _quadratic.task_batch(As, cs),
                              inner_lr=alpha, inner_steps=k, **options)
    return step.grads["w"]


def affine_map(method: str, alpha: float, k: int) -> tuple[Tensor, Tensor]:
    """``(M (2, 2), v (2,))`` with ``direction(method, θ) = M θ + v`` (exact for quadratic tasks)."""
    zero = torch.zeros(2, dtype=torch.float64)
    v = direction(method, zero, alpha, k)
    M = torch.stack([direction(method, e, alpha, k) - v for e in torch.eye(2, dtype=torch.float64)], 1)
    return M, v


def fixed_point(M: Tensor, v: Tensor) -> Tensor:
    """Where ``M θ + v = 0``: the θ at which this method's meta-training stops."""
    return torch.linalg.solve(M, -v)


def figure_data(alpha: float = DEFAULTS["alpha"], k: int = DEFAULTS["k"], n: int = 7) -> dict:
    """``points (n*n, 2)``, per method ``fields[m] (n*n, 2)`` (−grads: the update), ``fixed[m] (2,)``,
    and ``cos[m]``, the cosine between method m's field and MAML's, averaged over the points."""
    _check(alpha, k)
    (x0, x1), (y0, y1) = WINDOW
    pts = torch.stack(torch.meshgrid(torch.linspace(x0, x1, n, dtype=torch.float64),
                                     torch.linspace(y0, y1, n, dtype=torch.float64), indexing="xy"), -1).reshape(-1, 2)
    maps = {m: affine_map(m, alpha, k) for m in METHODS}
    fields = {m: -(pts @ M.T + v) for m, (M, v) in maps.items()}
    cos = {m: float(torch.nn.functional.cosine_similarity(fields[m], fields["maml"], dim=1).mean()) for m in METHODS}
    return {"points": pts, "fields": fields, "fixed": {m: fixed_point(*maps[m]) for m in METHODS}, "cos": cos,
            "maps": maps}


def draw(alpha, k):
    d, (As, cs) = figure_data(alpha, k), _quadratic.tasks()
    fig, axes = _live.new_figure(4, width=2.9, height=3.0)
    g = torch.stack(torch.meshgrid(torch.linspace(*WINDOW[0], 60, dtype=torch.float64),
                                   torch.linspace(*WINDOW[1], 60, dtype=torch.float64), indexing="xy"), -1)
    joint = sum(_quadratic.loss(g, A, c) for A, c in zip(As, cs)) / 2
    for ax, m in zip(axes, METHODS):
        ax.contour(g[..., 0], g[..., 1], joint.sqrt(), levels=8, colors="#bbb", linewidths=0.6)
        f = d["fields"][m] / d["fields"][m].norm(dim=1).max()
        ax.quiver(d["points"][:, 0], d["points"][:, 1], f[:, 0], f[:, 1], color=_html.COLORS[m], angles="xy",
                  scale_units="xy", scale=1 / 0.7)
        ax.plot(*cs.T, "k*", ms=8)
        ax.plot(*d["fixed"][m], "o", mfc="none", mec=_html.COLORS[m], ms=9, mew=2)
        ax.set(title=LABELS[m], xlim=WINDOW[0], ylim=WINDOW[1], aspect="equal")
    return fig, readout(d)


def readout(d: dict) -> str:
    return "; ".join(f"{LABELS[m]}: stops at ({d['fixed'][m][0]:.2f}, {d['fixed'][m][1]:.2f}), cos to MAML "
                     f"{d['cos'][m]:.3f}" for m in METHODS)


def live(**initial):
    """Sliders α (0.05-1) and k (1-5); the four fields are recomputed with the package's methods."""
    v = _html.controls_from(DEFAULTS, initial)
    _check(**v)
    c = {"alpha": _live.slider("inner lr α", 0.05, 1.0, 0.05, v["alpha"]),
         "k": _live.slider("inner steps k", 1, 5, 1, v["k"], integer=True)}
    return _live.assemble(c, draw)


@functools.lru_cache(maxsize=4)
def precompute(alphas: tuple = ALPHAS, steps: tuple = STEPS) -> list:
    """``[α index][k index][method] = [M00, M01, M10, M11, v0, v1]`` for the static page (6 digits).

    600 method calls for the default grid (a few seconds; iMAML solves its inner problem to
    convergence each time); cached.
    """
    return [[[[round(float(x), 6) for x in (*M.flatten(), *v)] for M, v in (affine_map(m, a, k) for m in METHODS)]
             for k in steps] for a in alphas]


JS = r"""
const n = 7, W = DATA.window, xs = MB.linspace(...W[0], n), ys = MB.linspace(...W[1], n), G = MB.linspace(...W[0], 40), H = MB.linspace(...W[1], 36);
const Lq = (t, x, y) => { const [[a, b], [, c]] = DATA.A[t], dx = x - DATA.c[t][0], dy = y - DATA.c[t][1];
  return 0.5 * (a * dx * dx + 2 * b * dx * dy + c * dy * dy); };
const Z = MB.grid(G, H, (x, y) => Math.sqrt((Lq(0, x, y) + Lq(1, x, y)) / 2));
const ctl = MB.controls(root, draw);
function draw(v) {
  const ia = DATA.alphas.reduce((best, a, i) => (Math.abs(a - v.alpha) < Math.abs(DATA.alphas[best] - v.alpha) ? i : best), 0), k = Math.round(v.k), maps = DATA.maps[ia][k - 1], ctx = MB.setup(canvas), out = {fixed: {}, cos: {}};
  const field = (m) => ys.flatMap((y) => xs.map((x) => [x, y, -(m[0] * x + m[1] * y + m[4]), -(m[2] * x + m[3] * y + m[5])]));
  const ref = field(maps[0]), narrow = MB.narrow(canvas);  // narrow: the four panels two by two
  DATA.methods.forEach((name, i) => {
    const m = maps[i], f = field(m), big = Math.max(...f.map((q) => Math.hypot(q[2], q[3]))) || 1, cell = 5 / (n - 1);
    const p = MB.panel(ctx, narrow ? [32 + 170 * (i % 2), 24 + 162 * Math.floor(i / 2), 135, 122] : [40 + 180 * i, 24, 160, 144],
                       W[0], W[1]);
    MB.contours(p, Z, G, H, 7, '#ccc');
    const det = m[0] * m[3] - m[1] * m[2], fx = [(-m[3] * m[4] + m[1] * m[5]) / det, (m[2] * m[4] - m[0] * m[5]) / det];
    MB.clip(p, () => { f.forEach(([x, y, u, w]) => MB.arrow(p, x, y, u / big * 0.75 * cell, w / big * 0.75 * cell, DATA.colors[name], 1.3));
      DATA.c.forEach((c) => MB.dot(p, c[0], c[1], 6, '#000', null, 'star'));
      MB.dot(p, fx[0], fx[1], 6, null, DATA.colors[name]); MB.dot(p, fx[0], fx[1], 5, null, DATA.colors[name]); });
    MB.frame(p, DATA.labels[i], '', '');
    out.fixed[name] = fx;
    out.cos[name] = f.reduce((s, q, j) => s + (q[2] * ref[j][2] + q[3] * ref[j][3]) / (Math.hypot(q[2], q[3]) * Math.hypot(ref[j][2], ref[j][3])), 0) / f.length;
  });
  const key = ['★ task minima   ○ where the method stops', 'arrows: −grads, scaled per panel',
               '(iMAML: λ = 1/(kα) = ' + MB.fmt(1 / (k * DATA.alphas[ia]), 2) + ')'];
  if (narrow) key.forEach((s, j) => MB.text(ctx, s, 10, 336 + 14 * j, {align: 'left'}));
  else MB.text(ctx, key.join('   '), 40, 196, {align: 'left'});
  MB.say(readout, DATA.methods.map((m, i) => `${DATA.labels[i]}: stops at (${MB.fmt(out.fixed[m][0], 2)}, ${MB.fmt(out.fixed[m][1], 2)}), cos to MAML ${MB.fmt(out.cos[m])}`).join('; '));
  root.mbLast = out;
}
ctl.fire();
"""


#: The canvas's accessible name (`_html.render`'s ``label``).
LABEL = ("Four arrow fields, one per method (MAML, first-order MAML, Reptile, iMAML): each method's update"
         " at a grid of initial points on two quadratic tasks, with the task minima and the point where "
         "the method stops")


def static(**initial) -> _html.StaticDemo:
    """Precomputed with the package's methods over α ∈ {0.1, ..., 1.0} × k ∈ {1..5} (the affine maps), drawn in JS."""
    v = _html.controls_from(DEFAULTS, initial)
    _check(**v)
    if v["alpha"] not in ALPHAS:
        raise ValueError(f"alpha must be one of the precomputed values {ALPHAS} for static(), got {v['alpha']!r}")
    As, cs = _quadratic.tasks()
    data = {"maps": precompute(ALPHAS, STEPS), "methods": list(METHODS), "labels": [LABELS[m] for m in METHODS],
            "alphas": list(ALPHAS), "A": As.tolist(), "c": cs.tolist(), "window": [list(w) for w in WINDOW],
            "colors": _html.COLORS}
    controls = (_html.slider("alpha", "inner lr α", ALPHAS[0], ALPHAS[-1], round(ALPHAS[1] - ALPHAS[0], 6), v["alpha"], digits=1)
                + _html.slider("k", "inner steps k", 1, 5, 1, v["k"], digits=0))
    caption = ("Each panel: the update −grads of one method (from mamlbook.get_method) at a grid of initial points θ, on "
               "two quadratic tasks; contours of their mean loss.")
    return _html.render("directions", controls, (760, 210), data, JS, caption, MAX_BYTES, narrow_size=(340, 374),
                        label=LABEL, title='where each method moves θ')
