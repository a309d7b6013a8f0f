"""Demo: one Reptile update, drawn (Reptile chapter).

Two quadratic tasks ``L_t(φ) = ½ (φ − c_t)ᵀ A_t (φ − c_t)`` (see `_quadratic`). From the
initial parameters θ each task runs ``k`` SGD steps of size α,

    φ_{t,0} = θ,   φ_{t,i} = φ_{t,i−1} − α A_t (φ_{t,i−1} − c_t),

and Reptile moves θ a fraction ε of the way to the mean adapted point:

    θ_new = θ + ε (mean_t φ_{t,k} − θ) = θ − ε · grads,   grads = θ − mean_t φ_{t,k}

(``grads`` is what `mamlbook.get_method("reptile")` returns; this module calls it).
Repeating the update traces the path θ takes during meta-training, drawn faint.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .. import checks
from ..algorithms import get_method
from . import _html, _live, _quadratic

RANGES = {"inner_lr": (0.05, 1.5), "inner_steps": (1, 5), "epsilon": (0.2, 0.8), "theta1": (-2.5, 2.5),
          "theta2": (-1.5, 3.0)}
DEFAULTS = {"inner_lr": 0.4, "inner_steps": 3, "epsilon": 0.5, "theta1": 1.8, "theta2": -1.0}
OUTER_ITERATIONS = 30
MAX_BYTES = 20_000


def _check(inner_lr, inner_steps, epsilon, theta1, theta2) -> None:
    checks.float_in_range("inner_lr", inner_lr, *RANGES["inner_lr"])
    checks.int_in_range("inner_steps", inner_steps, *RANGES["inner_steps"])
    checks.float_in_range("epsilon", epsilon, *RANGES["epsilon"])
    checks.float_in_range("theta1", theta1, *RANGES["theta1"])
    checks.float_in_range("theta2", theta2, *RANGES["theta2"])


def reptile_update(theta: Tensor, inner_lr: float, inner_steps: int, epsilon: float) -> Tensor:
    """``θ − ε · grads`` with ``grads`` from the package's Reptile on the two tasks; ``θ (2,)`` → ``(2,)``."""
    model, batch = _quadratic.Linear2(), _quadratic.task_batch(*_quadratic.tasks())
    step = get_method("reptile")(model, _quadratic.params(theta), batch, inner_lr=inner_lr, inner_steps=inner_steps)
    return theta - epsilon * step.grads["w"]


def figure_data(inner_lr: float = DEFAULTS["inner_lr"], inner_steps: int = DEFAULTS["inner_steps"],
                epsilon: float = DEFAULTS["epsilon"], theta1: float = DEFAULTS["theta1"],
                theta2: float = DEFAULTS["theta2"], outer_iterations: int = OUTER_ITERATIONS) -> dict:
    """What the figure shows.

    Returns ``theta (2,)``, ``paths (T, k+1, 2)`` (each task's inner SGD trajectory),
    ``mean_phi (2,)``, ``new_theta (2,)`` (one Reptile update) and ``outer_path
    (outer_iterations + 1, 2)`` (repeated updates from θ).
    """
    _check(inner_lr, inner_steps, epsilon, theta1, theta2)
    checks.int_in_range("outer_iterations", outer_iterations, 0)
    As, cs = _quadratic.tasks()
    theta = torch.tensor([theta1, theta2], dtype=torch.float64)
    paths = torch.stack([_quadratic.sgd_path(theta, A, c, inner_lr, inner_steps) for A, c in zip(As, cs)])
    outer = [theta]
    for _ in range(outer_iterations):
        outer.append(reptile_update(outer[-1], inner_lr, inner_steps, epsilon))
    return {"theta": theta, "paths": paths, "mean_phi": paths[:, -1].mean(0), "new_theta": outer[1] if outer_iterations else
            theta + epsilon * (paths[:, -1].mean(0) - theta), "outer_path": torch.stack(outer)}


def draw(inner_lr, inner_steps, epsilon, theta1, theta2):
    d = figure_data(inner_lr, inner_steps, epsilon, theta1, theta2)
    As, cs = _quadratic.tasks()
    fig, (ax,) = _live.new_figure(1, width=5.2, height=4.6)
    g = torch.stack(torch.meshgrid(torch.linspace(-2.5, 2.5, 80, dtype=torch.float64),
                                   torch.linspace(-1.5, 3.0, 80, dtype=torch.float64), indexing="xy"), -1)
    for t, color in enumerate(("C0", "C1")):
        ax.contour(g[..., 0], g[..., 1], _quadratic.loss(g, As[t], cs[t]), levels=8, colors=color, alpha=0.35,
                   linewidths=0.7)
        ax.plot(*d["paths"][t].T, "o-", color=color, ms=3, label=f"task {t + 1}: φ after 0..{inner_steps} steps")
        ax.plot(*cs[t], "*", color=color, ms=12)
    ax.plot(*d["outer_path"].T, ".-", color="#2ca02c", alpha=0.35, ms=3, label=f"{OUTER_ITERATIONS} Reptile updates")
    ax.plot(*d["mean_phi"], "o", mfc="none", mec="k", label="mean φ")
    ax.annotate("", d["new_theta"].tolist(), d["theta"].tolist(), arrowprops={"arrowstyle": "->", "color": "#2ca02c", "lw": 2})
    ax.plot(*d["theta"], "ko", label="θ")
    ax.set(xlim=RANGES["theta1"], ylim=RANGES["theta2"], aspect="equal", xlabel="θ₁", ylabel="θ₂")
    ax.legend(fontsize=7, loc="upper right")
    n = d["new_theta"]
    return fig, f"θ_new = θ + ε(mean φ − θ) = ({n[0]:.3f}, {n[1]:.3f})"


def live(**initial):
    """Sliders: learning rate α, inner steps k (1-5), interpolation rate ε (0.2-0.8), and θ."""
    v = _html.controls_from(DEFAULTS, initial)
    _check(**v)
    c = {"inner_lr": _live.slider("learning rate α", *RANGES["inner_lr"], 0.05, v["inner_lr"]),
         "inner_steps": _live.slider("inner steps k", *RANGES["inner_steps"], 1, v["inner_steps"], integer=True),
         "epsilon": _live.slider("interpolation ε", *RANGES["epsilon"], 0.05, v["epsilon"]),
         "theta1": _live.slider("θ₁", *RANGES["theta1"], 0.05, v["theta1"]),
         "theta2": _live.slider("θ₂", *RANGES["theta2"], 0.05, v["theta2"])}
    return _live.assemble(c, draw)


JS = r"""
const T = DATA.A.length, xs = MB.linspace(-2.5, 2.5, 60), ys = MB.linspace(-1.5, 3, 54);
const loss = (t, x, y) => { const [[a, b], [, c]] = DATA.A[t], dx = x - DATA.c[t][0], dy = y - DATA.c[t][1];
  return 0.5 * (a * dx * dx + 2 * b * dx * dy + c * dy * dy); };
const Z = [0, 1].map((t) => MB.grid(xs, ys, (x, y) => Math.sqrt(loss(t, x, y))));
const paths = (th, lr, k) => DATA.A.map(([[a, b], [, c]], t) => { const p = [th.slice()];
  for (let i = 0; i < k; i++) { const [x, y] = p[i], dx = x - DATA.c[t][0], dy = y - DATA.c[t][1];
    p.push([x - lr * (a * dx + b * dy), y - lr * (b * dx + c * dy)]); } return p; });
const update = (th, lr, k, eps) => { const P = paths(th, lr, k), m = [0, 1].map((i) => P.reduce((s, p) => s + p[k][i], 0) / T);
  return {P, m, next: [th[0] + eps * (m[0] - th[0]), th[1] + eps * (m[1] - th[1])]}; };
let p = null;
const ctl = MB.controls(root, draw);
canvas.addEventListener('click', (ev) => { const r = canvas.getBoundingClientRect(), s = +canvas.dataset.w / r.width;
  const [x0, y0, w, h] = p.box, X = (ev.clientX - r.left) * s, Y = (ev.clientY - r.top) * s;
  const x = -2.5 + (X - x0) / w * 5, y = -1.5 + (y0 + h - Y) / h * 4.5;
  if (x < -2.5 || x > 2.5 || y < -1.5 || y > 3) return;
  ctl.set('theta1', x.toFixed(2)); ctl.set('theta2', y.toFixed(2)); ctl.fire(); });
function draw(v) {
  const th = [v.theta1, v.theta2], k = Math.round(v.inner_steps), ctx = MB.setup(canvas);
  const narrow = MB.narrow(canvas), lx = narrow ? 45 : 462, ly = narrow ? 322 : 40;  // legend: below or right
  p = MB.panel(ctx, narrow ? [45, 24, 285, 256] : [50, 24, 400, 360], [-2.5, 2.5], [-1.5, 3]);
  const cols = [DATA.colors.maml, DATA.colors.fomaml], u = update(th, v.inner_lr, k, v.epsilon), outer = [th];
  for (let i = 0; i < DATA.outer; i++) outer.push(update(outer[i], v.inner_lr, k, v.epsilon).next);
  MB.clip(p, () => {
    Z.forEach((z, t) => MB.contours(p, z, xs, ys, 8, cols[t] + '66'));
    MB.line(p, outer.map((q) => q[0]), outer.map((q) => q[1]), DATA.colors.reptile + '77', 1.2);
    outer.forEach((q) => MB.dot(p, q[0], q[1], 1.5, DATA.colors.reptile + '77'));
    u.P.forEach((path, t) => { MB.line(p, path.map((q) => q[0]), path.map((q) => q[1]), cols[t], 1.8);
      path.forEach((q) => MB.dot(p, q[0], q[1], 2.5, cols[t])); MB.dot(p, ...DATA.c[t], 8, cols[t], '#000', 'star'); });
    MB.dot(p, u.m[0], u.m[1], 4.5, null, '#000');
    MB.arrow(p, th[0], th[1], u.next[0] - th[0], u.next[1] - th[1], DATA.colors.reptile, 2.5);
    MB.dot(p, th[0], th[1], 4.5, '#000');
  });
  MB.frame(p, 'one Reptile update (click to move θ)', 'θ₁', 'θ₂');
  MB.legend(ctx, [['task 1: φ path', cols[0]], ['task 2: φ path', cols[1]], ['θ → θ_new', DATA.colors.reptile],
                  [DATA.outer + ' updates', DATA.colors.reptile + '77']], lx, ly);
  ['● θ', '○ mean φ', '★ task minima'].forEach((s, i) => MB.text(ctx, s, lx, ly + 64 + 14 * i, {align: 'left'}));
  MB.say(readout, `mean φ = (${MB.fmt(u.m[0])}, ${MB.fmt(u.m[1])});  θ_new = θ + ε(mean φ − θ) = (${MB.fmt(u.next[0])}, ${MB.fmt(u.next[1])})`);
  root.mbLast = {new_theta: u.next, mean_phi: u.m, paths: u.P, outer_end: outer[outer.length - 1]};
}
ctl.fire();
"""


#: The canvas's accessible name (`_html.render`'s ``label``).
LABEL = (f"Contours of two tasks' losses, each task's SGD path from θ, their mean, Reptile's update of θ "
         f"and {OUTER_ITERATIONS} further updates; click to move θ, or use the θ₁ and θ₂ sliders")


def static(**initial) -> _html.StaticDemo:
    """Client-side JavaScript: the quadratic tasks' SGD steps are three lines of arithmetic."""
    v = _html.controls_from(DEFAULTS, initial)
    _check(**v)
    As, cs = _quadratic.tasks()
    controls = (_html.slider("inner_lr", "learning rate α", *RANGES["inner_lr"], 0.05, v["inner_lr"])
                + _html.slider("inner_steps", "inner steps k", *RANGES["inner_steps"], 1, v["inner_steps"], digits=0)
                + _html.slider("epsilon", "interpolation ε", *RANGES["epsilon"], 0.05, v["epsilon"])
                + _html.slider("theta1", "θ₁", *RANGES["theta1"], 0.01, v["theta1"])
                + _html.slider("theta2", "θ₂", *RANGES["theta2"], 0.01, v["theta2"]))
    data = {"A": As.tolist(), "c": cs.tolist(), "outer": OUTER_ITERATIONS, "colors": _html.COLORS}
    caption = ("Each task takes k SGD steps from θ (coloured paths); Reptile moves θ a fraction ε of the way to their "
               "mean (green arrow). Contours: square root of each task's loss.")
    return _html.render("reptile", controls, (620, 420), data, JS, caption, MAX_BYTES, narrow_size=(340, 420),
                        label=LABEL, title="Reptile's update")
