"""Demo: what first-order MAML drops, on a quadratic with adjustable curvature.

The function (the source article's FOMAML figure)::

    f(x) = ½ (x − ½)ᵀ C (x − ½) + gᵀ x,   C = [[a, b], [b, c]],   g = (0.1, −0.1),
    ∇f(x) = C (x − ½) + g,                ∇²f = C.

Treat ``x`` as the initial parameters θ and ``f`` as both the support and the query
loss of one task. One inner SGD step of size α gives the adapted point

    x' = U(x) = x − α ∇f(x),              ∂x'/∂x = I − α C.

* True (MAML) meta-gradient, the gradient of the post-adaptation loss ``f(U(x))``:
  ``∇_x f(U(x)) = (I − αC)ᵀ ∇f(x') = (I − αC) ∇f(x')`` (C is symmetric).
* First-order (FOMAML) meta-gradient: the Jacobian ``I − αC`` is replaced by ``I``,
  giving ``∇f(x')``.

They differ by ``−αC ∇f(x')``, so the relative error is at most ``α‖C‖₂`` and vanishes
for every x when C = 0 (f linear): that is what the "set C = 0" button shows.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .. import checks
from . import _html, _live

G = (0.1, -0.1)
ENTRY_RANGE = (-0.5, 0.5)   # a, b, c sliders (as in the source)
ALPHA_RANGE = (0.0, 2.0)    # inner step size
DEFAULTS = {"a": 0.5, "b": -0.1, "c": 0.0, "alpha": 1.0}
LIM = (-1.0, 2.0)           # the plotted square [−1, 2]²
MAX_BYTES = 20_000


def curvature_matrix(a: float, b: float, c: float) -> Tensor:
    """``C = [[a, b], [b, c]]`` (float64, ``(2, 2)``); each entry must be in [−0.5, 0.5]."""
    vals = [checks.float_in_range(n, v, *ENTRY_RANGE) for n, v in (("a", a), ("b", b), ("c", c))]
    return torch.tensor([[vals[0], vals[1]], [vals[1], vals[2]]], dtype=torch.float64)


def _g(x: Tensor) -> Tensor:
    return torch.tensor(G, dtype=x.dtype, device=x.device)


def f(x: Tensor, C: Tensor) -> Tensor:
    """``f(x)``: ``x (..., 2)`` → ``(...)``."""
    d = x - 0.5
    return 0.5 * torch.einsum("...i,ij,...j->...", d, C, d) + x @ _g(x)


def grad_f(x: Tensor, C: Tensor) -> Tensor:
    """``∇f(x) = C(x − ½) + g``: ``(..., 2)`` → ``(..., 2)``."""
    return (x - 0.5) @ C.T + _g(x)


def inner_step(x: Tensor, C: Tensor, alpha: float) -> Tensor:
    """``x' = x − α∇f(x)``, ``(..., 2)``."""
    return x - alpha * grad_f(x, C)


def maml_gradient(x: Tensor, C: Tensor, alpha: float) -> Tensor:
    """True meta-gradient ``(I − αC) ∇f(x')``, ``(..., 2)``."""
    return grad_f(inner_step(x, C, alpha), C) @ (torch.eye(2, dtype=C.dtype) - alpha * C).T


def fomaml_gradient(x: Tensor, C: Tensor, alpha: float) -> Tensor:
    """First-order meta-gradient ``∇f(x')``, ``(..., 2)``."""
    return grad_f(inner_step(x, C, alpha), C)


def angle_degrees(u: Tensor, v: Tensor, eps: float = 1e-12) -> Tensor:
    """Angle between ``u`` and ``v`` along the last axis, in degrees (0 where either is ~0)."""
    nu, nv = u.norm(dim=-1), v.norm(dim=-1)
    angle = torch.rad2deg(torch.atan2((u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]).abs(), (u * v).sum(-1)))
    return torch.where((nu > eps) & (nv > eps), angle, torch.zeros_like(angle))


def field(a: float = DEFAULTS["a"], b: float = DEFAULTS["b"], c: float = DEFAULTS["c"],
          alpha: float = DEFAULTS["alpha"], n: int = 13) -> dict:
    """Everything the figure shows, on an ``n × n`` grid over [−1, 2]².

    Returns ``points (n, n, 2)``, ``f (n, n)``, ``maml`` and ``fomaml (n, n, 2)``,
    ``angle (n, n)`` in degrees, and scalars ``mean_angle``, ``max_angle``,
    ``rel_error`` (mean of ‖MAML − FOMAML‖/‖FOMAML‖ = ‖αC∇f(x')‖/‖∇f(x')‖, never above
    ``bound`` = α‖C‖₂) over the ``rel_points`` grid points where ∇f(x') ≠ 0 (none when
    one inner step lands on the minimum from everywhere, C = cI with αc = 1: both
    gradients then vanish, and ``rel_error`` is 0 by convention).
    """
    C = curvature_matrix(a, b, c)
    alpha = checks.float_in_range("alpha", alpha, *ALPHA_RANGE)
    checks.int_in_range("n", n, 2, 400)
    s = torch.linspace(*LIM, n, dtype=torch.float64)
    points = torch.stack(torch.meshgrid(s, s, indexing="xy"), -1)  # points[j, i] = (s[i], s[j])
    true, first = maml_gradient(points, C, alpha), fomaml_gradient(points, C, alpha)
    norms = first.norm(dim=-1)
    rel = ((true - first).norm(dim=-1) / norms.clamp_min(1e-12))[norms > 1e-12]
    angle = angle_degrees(true, first)
    return {"points": points, "f": f(points, C), "maml": true, "fomaml": first, "angle": angle,
            "mean_angle": float(angle.mean()), "max_angle": float(angle.max()),
            "rel_error": float(rel.mean()) if rel.numel() else 0.0, "rel_points": rel.numel(),
            "bound": alpha * float(torch.linalg.matrix_norm(C, ord=2))}


def readout(data: dict) -> str:
    angles = f"angle MAML vs first-order: mean {data['mean_angle']:.1f}°, max {data['max_angle']:.1f}°; "
    if not data["rel_points"]:
        return angles + "∇f(x') = 0 at every point: one step lands on the minimum, both gradients vanish"
    return angles + f"relative error ‖αC∇f(x')‖/‖∇f(x')‖: mean {data['rel_error']:.3f} (≤ α‖C‖₂ = {data['bound']:.3f})"


def draw(a: float, b: float, c: float, alpha: float):
    """The live figure: contours of f, then the two gradient fields side by side."""
    data, dense = field(a, b, c, alpha), field(a, b, c, alpha, n=40)
    fig, axes = _live.new_figure(2, width=3.6, height=3.6)
    scale = float(torch.maximum(data["maml"].norm(dim=-1), data["fomaml"].norm(dim=-1)).max()) * 5 + 1e-12
    for ax, key, title in ((axes[0], "maml", "true (MAML): (I − αC)∇f(x')"), (axes[1], "fomaml", "first order: ∇f(x')")):
        ax.contour(dense["points"][..., 0], dense["points"][..., 1], dense["f"], levels=12, colors="#999", linewidths=0.7)
        p, v = data["points"], -data[key]
        ax.quiver(p[..., 0], p[..., 1], v[..., 0], v[..., 1], color=_html.COLORS[key], angles="xy",
                  scale_units="xy", scale=scale / 1.5)
        ax.set(title=title, xlabel="x₁", ylabel="x₂", xlim=LIM, ylim=LIM, aspect="equal")
    return fig, readout(data)


def live(**initial):
    """Sliders a, b, c ∈ [−0.5, 0.5], α ∈ [0, 2] and a "set C = 0" button (ipywidgets)."""
    v = _html.controls_from(DEFAULTS, initial)
    field(v["a"], v["b"], v["c"], v["alpha"], n=2)  # validate
    controls = {k: _live.slider(k if k != "alpha" else "α", *(ENTRY_RANGE if k != "alpha" else ALPHA_RANGE), 0.01, v[k])
                for k in ("a", "b", "c", "alpha")}

    def zero(cs):
        for k in "abc":
            cs[k].value = 0.0

    return _live.assemble(controls, draw, {"set C = 0": zero})


JS = r"""
const n = 13, N = 50, xs = MB.linspace(-1, 2, n), dense = MB.linspace(-1, 2, N), G = DATA.g;
const ctl = MB.controls(root, draw);
root.querySelector('[data-action=zero]').addEventListener('click', () => { 'abc'.split('').forEach((k) => ctl.set(k, 0)); ctl.fire(); });
function draw(v) {
  const {a, b, c, alpha} = v, gf = (x, y) => [a * (x - 0.5) + b * (y - 0.5) + G[0], b * (x - 0.5) + c * (y - 0.5) + G[1]];
  const f = (x, y) => 0.5 * (a * (x - .5) ** 2 + 2 * b * (x - .5) * (y - .5) + c * (y - .5) ** 2) + G[0] * x + G[1] * y;
  const F = MB.grid(dense, dense, f), fields = {maml: [], fomaml: []};
  let sumA = 0, maxA = 0, sumR = 0, cnt = 0, big = 1e-12;
  for (const y of xs) for (const x of xs) {
    const [gx, gy] = gf(x, y), [hx, hy] = gf(x - alpha * gx, y - alpha * gy);
    const fo = [hx, hy], tr = [hx - alpha * (a * hx + b * hy), hy - alpha * (b * hx + c * hy)];
    fields.maml.push([x, y, ...tr]); fields.fomaml.push([x, y, ...fo]);
    const nt = Math.hypot(...tr), nf = Math.hypot(...fo);
    big = Math.max(big, nt, nf);
    const ang = nt > 1e-12 && nf > 1e-12 ? Math.atan2(Math.abs(tr[0] * fo[1] - tr[1] * fo[0]), tr[0] * fo[0] + tr[1] * fo[1]) * 180 / Math.PI : 0;
    sumA += ang; maxA = Math.max(maxA, ang);
    if (nf > 1e-12) { sumR += Math.hypot(tr[0] - fo[0], tr[1] - fo[1]) / nf; cnt++; }
  }
  const ctx = MB.setup(canvas), cell = 3 / (n - 1);
  const narrow = MB.narrow(canvas);  // narrow: the two panels stacked
  [['maml', 'true (MAML): (I − αC)∇f(x′)'], ['fomaml', 'first order: ∇f(x′)']].forEach(([key, title], i) => {
    const p = MB.panel(ctx, narrow ? [50, 24 + 310 * i, 260, 260] : [50 + 340 * i, 24, 280, 280], [-1, 2], [-1, 2]);
    MB.contours(p, F, dense, dense, 12, '#aaa');
    MB.clip(p, () => fields[key].forEach(([x, y, u, w]) => MB.arrow(p, x, y, -u / big * 0.9 * cell, -w / big * 0.9 * cell, DATA.colors[key], 1.3)));
    MB.frame(p, title, 'x₁', 'x₂');
  });
  const s = Math.hypot(a - c, 2 * b), bound = alpha * Math.max(Math.abs((a + c + s) / 2), Math.abs((a + c - s) / 2));
  const out = {mean_angle: sumA / (n * n), max_angle: maxA, rel_error: cnt ? sumR / cnt : 0, rel_points: cnt, bound};
  MB.say(readout, `angle MAML vs first-order: mean ${MB.fmt(out.mean_angle, 1)}°, max ${MB.fmt(out.max_angle, 1)}°; ` +
    (cnt ? `relative error ‖αC∇f(x′)‖/‖∇f(x′)‖: mean ${MB.fmt(out.rel_error)} (≤ α‖C‖₂ = ${MB.fmt(bound)})`
         : '∇f(x′) = 0 at every point: one step lands on the minimum, both gradients vanish'));
  root.mbLast = out;
}
ctl.fire();
"""


#: The canvas's accessible name (`_html.render`'s ``label``).
LABEL = ("Two arrow fields over the initial point x: the MAML meta-descent direction, (I − αC)∇f(x′), and "
         "the first-order one, ∇f(x′), on the contours of f")


def static(**initial) -> _html.StaticDemo:
    """The same figure in client-side JavaScript (analytic: nothing precomputed)."""
    v = _html.controls_from(DEFAULTS, initial)
    field(v["a"], v["b"], v["c"], v["alpha"], n=2)  # validate ranges
    entries = {"a": "top left", "b": "off the diagonal", "c": "bottom right"}
    controls = "".join(_html.slider(k, k, *ENTRY_RANGE, 0.01, v[k], spoken=f"{k}, the entry of C {where}")
                       for k, where in entries.items())
    controls += _html.slider("alpha", "α", *ALPHA_RANGE, 0.01, v["alpha"]) + _html.button("zero", "set C = 0")
    caption = ("Arrows: the meta-descent direction −(meta-gradient) at each initial point x, one inner step of size α on "
               "f(x) = ½(x − ½)ᵀC(x − ½) + gᵀx, drawn to one common scale. First order drops the factor I − αC.")
    return _html.render("curvature", controls, (680, 340), {"g": list(G), "colors": _html.COLORS}, JS, caption, MAX_BYTES,
                         narrow_size=(340, 628), label=LABEL, title="MAML's direction against the first-order one")
