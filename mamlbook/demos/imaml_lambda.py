"""Demo: iMAML's proximal inner problem and its strength λ (iMAML chapter).

One quadratic task ``L(φ) = ½ (φ − c)ᵀ H (φ − c)`` (task 2 of `_quadratic`). iMAML adapts
by minimising the regularised loss

    G(φ) = L(φ) + λ/2 ‖φ − θ‖²,   φ* = (H + λI)⁻¹ (H c + λ θ).

At the minimiser the two forces balance, ``∇L(φ*) = −λ (φ* − θ)``: the loss gradient
arrow and the pull back to θ are equal and opposite. As λ goes from 0 to ∞, φ* slides
from the task's own minimum c to θ (the dashed curve). The implicit Jacobian is
``dφ*/dθ = (I + H/λ)⁻¹`` (the matrix iMAML's conjugate gradient inverts). The dots are
the package's inner solver, `mamlbook.functional.proximal_adapt`: gradient descent on G
from θ with step ``1/(λ + ‖H‖₂)``, ``SOLVER_STEPS`` steps.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import checks
from ..functional import proximal_adapt
from ..functional import batch_parameters
from . import _html, _live, _quadratic

LAM_RANGE = (0.01, 100.0)
RANGES = {"theta1": (-2.5, 2.5), "theta2": (-1.5, 3.0)}
DEFAULTS = {"lam": 1.0, "theta1": 1.5, "theta2": -0.5}
SOLVER_STEPS = 16
MAX_BYTES = 20_000


def task() -> tuple[Tensor, Tensor]:
    As, cs = _quadratic.tasks()
    return As[1], cs[1]


def minimiser(theta: Tensor, lam: float, H: Tensor, c: Tensor) -> Tensor:
    """``φ* = (H + λI)⁻¹ (H c + λ θ)``: ``θ (..., 2)`` → ``(..., 2)``."""
    lam = checks.positive_float("lam", lam)
    rhs = (c @ H.T + lam * theta).unsqueeze(-1)
    return torch.linalg.solve(H + lam * torch.eye(2, dtype=H.dtype), rhs).squeeze(-1)


def implicit_jacobian(H: Tensor, lam: float) -> Tensor:
    """``dφ*/dθ = (I + H/λ)⁻¹``, ``(2, 2)``."""
    lam = checks.positive_float("lam", lam)
    return torch.linalg.inv(torch.eye(2, dtype=H.dtype) + H / lam)


def solver_path(theta: Tensor, lam: float, steps: int = SOLVER_STEPS) -> Tensor:
    """The package's proximal inner loop after 0, 1, ..., ``steps`` steps: ``(steps + 1, 2)``."""
    H, c = task()
    batch = _quadratic.task_batch(H[None], c[None])
    lr = 1.0 / (lam + float(torch.linalg.matrix_norm(H, ord=2)))
    anchor = batch_parameters(_quadratic.params(theta), 1)
    model = _quadratic.Linear2()
    out = [theta]
    for k in range(1, steps + 1):  # proximal_adapt starts at θ every call; k steps each time
        phi, _, _ = proximal_adapt(model, anchor, batch.x_support, batch.y_support, inner_lr=lr, inner_steps=k, lam=lam)
        out.append(phi["w"][0])
    return torch.stack(out)


def figure_data(lam: float = DEFAULTS["lam"], theta1: float = DEFAULTS["theta1"], theta2: float = DEFAULTS["theta2"]) -> dict:
    """``phi_star (2,)``, ``loss_grad`` ∇L(φ*) and ``pull`` −λ(φ* − θ) (equal at the optimum),
    ``jacobian (2, 2)``, ``lambda_path (61, 2)`` (φ* for λ = 10⁻³..10³), ``solver (17, 2)``."""
    lam = checks.float_in_range("lam", lam, *LAM_RANGE)
    theta = torch.tensor([checks.float_in_range("theta1", theta1, *RANGES["theta1"]),
                          checks.float_in_range("theta2", theta2, *RANGES["theta2"])], dtype=torch.float64)
    H, c = task()
    phi = minimiser(theta, lam, H, c)
    lams = torch.logspace(-3, 3, 61, dtype=torch.float64)
    return {"theta": theta, "phi_star": phi, "loss_grad": _quadratic.grad(phi, H, c), "pull": -lam * (phi - theta),
            "jacobian": implicit_jacobian(H, lam), "lambda_path": torch.stack([minimiser(theta, float(l), H, c) for l in lams]),
            "solver": solver_path(theta, lam)}


def readout(d: dict, lam: float) -> str:
    J = d["jacobian"]
    return (f"λ = {lam:.3g}: ‖∇L(φ*)‖ = {float(d['loss_grad'].norm()):.3f} = λ‖φ* − θ‖ = {float(d['pull'].norm()):.3f};  "
            f"dφ*/dθ = (I + H/λ)⁻¹ = [[{J[0, 0]:.2f}, {J[0, 1]:.2f}], [{J[1, 0]:.2f}, {J[1, 1]:.2f}]]")


def draw(lam, theta1, theta2):
    d, (H, c) = figure_data(lam, theta1, theta2), task()
    fig, (ax,) = _live.new_figure(1, width=5.0, height=4.6)
    g = torch.stack(torch.meshgrid(torch.linspace(-2.5, 2.5, 80, dtype=torch.float64),
                                   torch.linspace(-1.5, 3.0, 80, dtype=torch.float64), indexing="xy"), -1)
    reg = _quadratic.loss(g, H, c) + 0.5 * lam * (g - d["theta"]).square().sum(-1)
    ax.contour(g[..., 0], g[..., 1], reg.sqrt(), levels=10, colors="#888", linewidths=0.7)
    ax.plot(*d["lambda_path"].T, "--", color="#888", label="φ* as λ goes 10⁻³ → 10³")
    ax.plot(*d["solver"].T, ".", color="C3", ms=4, alpha=0.6, label=f"proximal_adapt, 0..{SOLVER_STEPS} steps")
    ax.plot(*c, "*", color="C1", ms=13, label="task minimum c")
    ax.plot(*d["theta"], "ko", label="θ")
    ax.plot(*d["phi_star"], "o", color="C3", label="φ*")
    for v, color, label in ((-d["loss_grad"], "C1", "−∇L(φ*)"), (d["pull"], "k", "−λ(φ* − θ)")):
        ax.quiver(*d["phi_star"], *(0.5 * v), color=color, angles="xy", scale_units="xy", scale=1, label=label, width=0.008)
    ax.set(xlim=RANGES["theta1"], ylim=RANGES["theta2"], aspect="equal", xlabel="φ₁", ylabel="φ₂")
    ax.legend(fontsize=7, loc="upper right")
    return fig, readout(d, lam)


def live(**initial):
    """A λ slider (log scale, 0.01-100) and θ sliders, over the regularised inner loss."""
    v = _html.controls_from(DEFAULTS, initial)
    figure_data(**v)  # validate
    w = _live.widgets()
    c = {"lam": w.FloatLogSlider(value=v["lam"], base=10, min=-2, max=2, step=0.05, description="λ",
                                 continuous_update=False),
         "theta1": _live.slider("θ₁", *RANGES["theta1"], 0.05, v["theta1"]),
         "theta2": _live.slider("θ₂", *RANGES["theta2"], 0.05, v["theta2"])}
    return _live.assemble(c, draw)


JS = r"""
const [[a, b], [, c]] = DATA.H, C = DATA.c, xs = MB.linspace(-2.5, 2.5, 60), ys = MB.linspace(-1.5, 3, 54);
const L = (x, y) => { const dx = x - C[0], dy = y - C[1]; return 0.5 * (a * dx * dx + 2 * b * dx * dy + c * dy * dy); };
const gradL = ([x, y]) => [a * (x - C[0]) + b * (y - C[1]), b * (x - C[0]) + c * (y - C[1])];
const star = (th, lam) => { const m = [[a + lam, b], [b, c + lam]], det = m[0][0] * m[1][1] - b * b;
  const r = [a * C[0] + b * C[1] + lam * th[0], b * C[0] + c * C[1] + lam * th[1]];
  return [(m[1][1] * r[0] - b * r[1]) / det, (m[0][0] * r[1] - b * r[0]) / det]; };
const normA = (a + c) / 2 + Math.hypot((a - c) / 2, b);
let p = null;
const ctl = MB.controls(root, draw);
canvas.addEventListener('click', (ev) => { const r = canvas.getBoundingClientRect(), s = +canvas.dataset.w / r.width;
  const [x0, y0, w, h] = p.box, x = -2.5 + ((ev.clientX - r.left) * s - x0) / w * 5, y = -1.5 + (y0 + h - (ev.clientY - r.top) * s) / h * 4.5;
  if (x < -2.5 || x > 2.5 || y < -1.5 || y > 3) return;
  ctl.set('theta1', x.toFixed(2)); ctl.set('theta2', y.toFixed(2)); ctl.fire(); });
function draw(v) {
  const th = [v.theta1, v.theta2], lam = v.lam, ctx = MB.setup(canvas), phi = star(th, lam), g = gradL(phi);
  const pull = [-lam * (phi[0] - th[0]), -lam * (phi[1] - th[1])], lr = 1 / (lam + normA), solver = [th];
  for (let k = 0; k < DATA.steps; k++) { const q = solver[k], gq = gradL(q);
    solver.push([q[0] - lr * (gq[0] + lam * (q[0] - th[0])), q[1] - lr * (gq[1] + lam * (q[1] - th[1]))]); }
  const lpath = MB.linspace(-3, 3, 61).map((e) => star(th, Math.pow(10, e)));
  const narrow = MB.narrow(canvas), lx = narrow ? 45 : 462, ly = narrow ? 322 : 40;  // legend: below or right
  p = MB.panel(ctx, narrow ? [45, 24, 285, 256] : [50, 24, 400, 360], [-2.5, 2.5], [-1.5, 3]);
  MB.clip(p, () => {
    MB.contours(p, MB.grid(xs, ys, (x, y) => Math.sqrt(L(x, y) + 0.5 * lam * ((x - th[0]) ** 2 + (y - th[1]) ** 2))), xs, ys, 10, '#999');
    MB.line(p, lpath.map((q) => q[0]), lpath.map((q) => q[1]), '#888', 1.2, [5, 4]);
    solver.forEach((q) => MB.dot(p, q[0], q[1], 2, DATA.colors.imaml + '99'));
    MB.dot(p, C[0], C[1], 9, DATA.colors.fomaml, '#000', 'star');
    MB.arrow(p, phi[0], phi[1], -0.5 * g[0], -0.5 * g[1], DATA.colors.fomaml, 2.5);
    MB.arrow(p, phi[0], phi[1], 0.5 * pull[0], 0.5 * pull[1], '#000', 2.5);
    MB.dot(p, th[0], th[1], 4.5, '#000'); MB.dot(p, phi[0], phi[1], 5, DATA.colors.imaml, '#000');
  });
  MB.frame(p, 'L(φ) + λ/2 ‖φ − θ‖²  (click to move θ)', 'φ₁', 'φ₂');
  MB.legend(ctx, [['−∇L(φ*) (half length)', DATA.colors.fomaml], ['−λ(φ* − θ), pull to θ (half)', '#000'],
                  ['φ* as λ: 10⁻³ → 10³', '#888', [5, 4]]], lx, ly);
  ['● θ', '● φ* (red)', '★ task minimum c', '· inner solver, ' + DATA.steps + ' steps'].forEach((s, i) => MB.text(ctx, s, lx, ly + 50 + 14 * i, {align: 'left'}));
  const J = [[1 + a / lam, b / lam], [b / lam, 1 + c / lam]], det = J[0][0] * J[1][1] - J[0][1] ** 2;
  const Ji = [[J[1][1] / det, -J[0][1] / det], [-J[0][1] / det, J[0][0] / det]], f2 = (x) => MB.fmt(x, 2);
  MB.say(readout, `λ = ${lam.toPrecision(3)}: ‖∇L(φ*)‖ = ${MB.fmt(Math.hypot(...g))} = λ‖φ* − θ‖ = ${MB.fmt(Math.hypot(...pull))};  ` +
    `dφ*/dθ = (I + H/λ)⁻¹ = [[${f2(Ji[0][0])}, ${f2(Ji[0][1])}], [${f2(Ji[1][0])}, ${f2(Ji[1][1])}]]`);
  root.mbLast = {phi_star: phi, loss_grad: g, pull, jacobian: Ji, solver_end: solver[solver.length - 1]};
}
ctl.fire();
"""


#: The canvas's accessible name (`_html.render`'s ``label``).
LABEL = ("Contours of the regularised inner loss, with θ, its minimiser φ*, the task minimum, the two "
         "equal and opposite forces at φ* and the path of φ* as λ varies; click to move θ, or use the θ₁ and θ₂ sliders")


def static(**initial) -> _html.StaticDemo:
    """Client-side JavaScript: φ* has a closed form (a 2×2 solve)."""
    v = _html.controls_from(DEFAULTS, initial)
    figure_data(**v)  # validate
    H, c = task()
    controls = (_html.slider("lam", "λ", math.log10(LAM_RANGE[0]), math.log10(LAM_RANGE[1]), 0.02, v["lam"], digits=3, log=True)
                + _html.slider("theta1", "θ₁", *RANGES["theta1"], 0.01, v["theta1"])
                + _html.slider("theta2", "θ₂", *RANGES["theta2"], 0.01, v["theta2"]))
    caption = ("Contours: the regularised inner loss. At its minimiser φ* the loss gradient and the pull back to θ are "
               "equal and opposite; small λ lets φ* reach the task's minimum, large λ keeps it at θ.")
    data = {"H": H.tolist(), "c": c.tolist(), "steps": SOLVER_STEPS, "colors": _html.COLORS}
    return _html.render("imaml", controls, (640, 420), data, JS, caption, MAX_BYTES, narrow_size=(340, 420),
                        label=LABEL, title="iMAML's regularisation strength λ")
