"""Demo: the pretrained model and the MAML model adapting to a sinusoid you choose (MAML chapter).

A task is ``y = A sin(x − φ)`` (amplitude ``A ∈ [0.1, 5]``, phase ``φ ∈ [0, π]``); the
reader picks ``K`` support points (1-10) and the number of SGD steps (0-10). Both shipped
1-40-40-1 ReLU networks (`mamlbook.recipes.load`: ``sinusoid_pretrain``, trained
on all tasks jointly, and ``sinusoid_maml``) then take those steps of book eq. (2.2)
with ``α = 0.01`` on the support MSE, as in the MAML paper's evaluation.

Static version: the networks' weights (2 × 1,761 float32, base64) and a 60-line
forward/backward pass in JavaScript, so the page fine-tunes the networks itself, as the
source article does with tfjs, for *any* slider setting; no frames are stored. The
browser test checks that the page's numbers equal `figure_data`'s.
"""
from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .. import checks
from ..evaluate import adapted_predictions
from ..functional import Params, parameters_of
from ..tasks import SinusoidTasks, TaskBatch
from ..plotting import LABELS  # the names the book gives the methods
from . import _html, _live

RANGES = {"amplitude": (0.1, 5.0), "phase": (0.0, math.pi), "shots": (1, 10), "steps": (0, 10)}
DEFAULTS = {"amplitude": 2.5, "phase": 1.0, "shots": 5, "steps": 5}
INNER_LR = 0.01
RECIPES = {"pretrain": "sinusoid_pretrain", "maml": "sinusoid_maml"}
GRID = 100  # points on [−5, 5] where curves are drawn and the MSE is measured
MAX_BYTES = 48_000


def _check(amplitude, phase, shots, steps) -> None:
    checks.float_in_range("amplitude", amplitude, *RANGES["amplitude"])
    checks.float_in_range("phase", phase, *RANGES["phase"])
    checks.int_in_range("shots", shots, *RANGES["shots"])
    checks.int_in_range("steps", steps, *RANGES["steps"])


@functools.lru_cache(maxsize=1)
def shipped_models() -> dict[str, tuple[nn.Module, Params]]:
    """``{"pretrain": (model, θ), "maml": (model, θ)}`` from the shipped checkpoints, on the CPU."""
    from ..recipes import load

    out = {}
    for name, recipe in RECIPES.items():
        model, _ = load(recipe, device="cpu")
        out[name] = (model, {k: v.detach() for k, v in parameters_of(model).items()})
    return out


def support_inputs(seed: int = 0) -> torch.Tensor:
    """Ten fixed support inputs on [−5, 5], ``(10,)``; a demo uses the first ``shots``."""
    return SinusoidTasks().sample_inputs(1, 10, torch.Generator().manual_seed(seed)).view(10)


def figure_data(amplitude: float = DEFAULTS["amplitude"], phase: float = DEFAULTS["phase"],
                shots: int = DEFAULTS["shots"], steps: int = DEFAULTS["steps"], *, x_support: torch.Tensor | None = None,
                models: dict | None = None) -> dict:
    """Curves after 0..``steps`` SGD steps for each model.

    Returns ``x (GRID,)``, ``truth (GRID,)``, ``x_support``/``y_support (shots,)``,
    ``predictions[name] (steps + 1, GRID)`` and ``mse[name] (steps + 1,)`` (against the
    truth on the grid). ``x_support`` defaults to `support_inputs` (its first ``shots``);
    ``models`` to `shipped_models`.
    """
    _check(amplitude, phase, shots, steps)
    xs = (support_inputs() if x_support is None else checks.tensor("x_support", x_support, ndim=1))[:shots]
    if xs.numel() != shots:
        raise ValueError(f"x_support must hold at least shots={shots} values, got {xs.numel()}")
    models = shipped_models() if models is None else models
    a, p = torch.tensor([amplitude]), torch.tensor([phase])
    x = torch.linspace(-5, 5, GRID).view(1, GRID, 1)
    xs = xs.view(1, shots, 1).to(torch.float32)
    truth = SinusoidTasks.target(x, a, p)
    ys = SinusoidTasks.target(xs, a, p)
    batch = TaskBatch(xs, ys, xs, ys)
    out = {"x": x.view(-1), "truth": truth.view(-1), "x_support": xs.view(-1), "y_support": ys.view(-1),
           "predictions": {}, "mse": {}}
    for name, (model, params) in models.items():
        # "keep": the reader may pick a task on which SGD overshoots; the demo shows it as it is
        preds = adapted_predictions(model, params, batch, x, inner_lr=INNER_LR, steps=list(range(steps + 1)),
                                    on_divergence="keep")
        curves = torch.stack([preds[s].view(-1) for s in range(steps + 1)])
        out["predictions"][name] = curves
        out["mse"][name] = (curves - out["truth"]).square().mean(1)
    return out


def _steps(k: int) -> str:
    return f"{k} step" + ("" if k == 1 else "s")


def readout(d: dict) -> str:
    return "; ".join(f"{LABELS[name]}: MSE on [−5, 5] {float(m[0]):.3f} before → {float(m[-1]):.3f} after {_steps(len(m) - 1)}"
                     for name, m in d["mse"].items())


def draw(amplitude, phase, shots, steps):
    d = figure_data(amplitude, phase, shots, steps)
    fig, axes = _live.new_figure(2, width=3.8, height=3.0)
    for ax, name in zip(axes, d["predictions"]):
        ax.plot(d["x"], d["truth"], color="k", lw=1.5, label="truth")
        curves = d["predictions"][name]
        for s in range(1, steps):
            ax.plot(d["x"], curves[s], color=_html.COLORS[name], alpha=0.25, lw=0.8)
        ax.plot(d["x"], curves[0], "--", color=_html.COLORS[name], lw=1, label="before")
        ax.plot(d["x"], curves[-1], color=_html.COLORS[name], lw=2, label=f"after {_steps(steps)}")
        ax.scatter(d["x_support"], d["y_support"], marker="^", color="C3", zorder=5, label="support")
        ax.set(title=LABELS[name], xlabel="x", ylim=(-6, 6))
        ax.legend(fontsize=7, loc="lower right")
    return fig, readout(d)


def live(**initial):
    """Sliders: amplitude, phase, support points K, SGD steps; both shipped models adapt live."""
    v = _html.controls_from(DEFAULTS, initial)
    _check(**v)
    c = {"amplitude": _live.slider("amplitude", *RANGES["amplitude"], 0.1, v["amplitude"]),
         "phase": _live.slider("phase", *RANGES["phase"], 0.05, v["phase"]),
         "shots": _live.slider("support points K", *RANGES["shots"], 1, v["shots"], integer=True),
         "steps": _live.slider("SGD steps", *RANGES["steps"], 1, v["steps"], integer=True)}
    return _live.assemble(c, draw)


JS = r"""
const nets = DATA.models.map((m) => { const flat = MB.f32(m.weights); let o = 0;
  const layers = m.shapes.map(([out, inp]) => { const W = flat.subarray(o, o + out * inp); o += out * inp;
    const b = flat.subarray(o, o + out); o += out; return {W, b, out, inp}; }); return {name: m.name, layers}; });
const copy = (L) => L.map((l) => ({...l, W: Float64Array.from(l.W), b: Float64Array.from(l.b)}));
const forward = (L, x) => { const acts = [[x]]; let h = [x];
  L.forEach((l, k) => { const z = new Float64Array(l.out);
    for (let i = 0; i < l.out; i++) { let s = l.b[i]; for (let j = 0; j < l.inp; j++) s += l.W[i * l.inp + j] * h[j]; z[i] = s; }
    h = k < L.length - 1 ? z.map((v) => (v > 0 ? v : 0)) : z; acts.push(h); });
  return acts; };
const sgd = (L, xs, ys, lr) => {  // one step on the mean squared error over the support points
  const g = L.map((l) => ({W: new Float64Array(l.W.length), b: new Float64Array(l.b.length)}));
  xs.forEach((x, n) => { const acts = forward(L, x); let d = [2 * (acts[L.length][0] - ys[n]) / xs.length];
    for (let k = L.length - 1; k >= 0; k--) { const l = L[k], a = acts[k], prev = new Float64Array(l.inp);
      for (let i = 0; i < l.out; i++) { g[k].b[i] += d[i];
        for (let j = 0; j < l.inp; j++) { g[k].W[i * l.inp + j] += d[i] * a[j]; prev[j] += l.W[i * l.inp + j] * d[i]; } }
      d = k > 0 ? prev.map((v, j) => (a[j] > 0 ? v : 0)) : null; } });
  L.forEach((l, k) => { l.W.forEach((w, i) => { l.W[i] = w - lr * g[k].W[i]; }); l.b.forEach((w, i) => { l.b[i] = w - lr * g[k].b[i]; }); });
};
const X = MB.linspace(-5, 5, DATA.grid);
let xsup = DATA.x_support.slice(), seed = 1;
const rand = () => { seed = (seed + 0x6D2B79F5) | 0; let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t; return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
const ctl = MB.controls(root, draw);
root.querySelector('[data-action=resample]').addEventListener('click', () => { xsup = xsup.map(() => -5 + 10 * rand()); ctl.fire(); });
function draw(v) {
  const K = Math.round(v.shots), S = Math.round(v.steps), f = (x) => v.amplitude * Math.sin(x - v.phase);
  const xs = xsup.slice(0, K), ys = xs.map(f), truth = X.map(f), ctx = MB.setup(canvas), out = {predictions: {}, mse: {}};
  const narrow = MB.narrow(canvas);  // narrow: the two panels stacked, the legend in two rows
  nets.forEach((net, i) => {
    const L = copy(net.layers), curves = [];
    for (let s = 0; s <= S; s++) { if (s) sgd(L, xs, ys, DATA.lr); curves.push(X.map((x) => forward(L, x)[L.length][0])); }
    const p = MB.panel(ctx, narrow ? [45, 24 + 250 * i, 280, 190] : [45 + 340 * i, 24, 290, 230], [-5, 5], [-6, 6]);
    const col = DATA.colors[net.name];
    MB.clip(p, () => {
      MB.line(p, X, truth, '#000', 1.5);
      curves.slice(1, -1).forEach((c) => MB.line(p, X, c, col + '44', 0.8));
      MB.line(p, X, curves[0], col, 1, [5, 3]); MB.line(p, X, curves[S], col, 2.2);
      xs.forEach((x, n) => MB.dot(p, x, ys[n], 5, '#d62728', '#000', 'tri'));
    });
    MB.frame(p, DATA.titles[i], 'x', i && !narrow ? '' : 'y');
    out.predictions[net.name] = curves;
    out.mse[net.name] = curves.map((c) => c.reduce((s, y, j) => s + (y - truth[j]) ** 2, 0) / c.length);
  });
  const after = 'after ' + S + (S === 1 ? ' step' : ' steps');
  const at = (i) => (narrow ? [45 + 140 * (i % 2), 514 + 16 * Math.floor(i / 2)] : [45 + 150 * i, 292]);
  [['truth', '#000'], ['before adapting', '#555', [5, 3]], [after, '#555']].forEach((item, i) => MB.legend(ctx, [item], ...at(i)));
  MB.text(ctx, '▲ support points', narrow ? 185 : 495, at(3)[1], {align: 'left'});
  MB.say(readout, nets.map((n, i) => `${DATA.titles[i]}: MSE on [−5, 5] ${MB.fmt(out.mse[n.name][0])} before → ${MB.fmt(out.mse[n.name][S])} ${after}`).join('; '));
  out.x_support = xs; root.mbLast = out;
}
ctl.fire();
"""


#: The canvas's accessible name (`_html.render`'s ``label``).
LABEL = ("Two panels, the pretrained network and the MAML one: the true sine curve, the support points, "
         "and each network's prediction before and after the SGD steps")


def static(**initial) -> _html.StaticDemo:
    """The shipped networks' weights + fine-tuning in client-side JavaScript (see the module docstring)."""
    v = _html.controls_from(DEFAULTS, initial)
    _check(**v)
    models = []
    for name, (model, params) in shipped_models().items():
        shapes = [tuple(params[k].shape) for k in params if k.endswith("weight")]
        ordered = [t for k in params if k.endswith("weight") for t in (params[k], params[k[:-6] + "bias"])]
        models.append({"name": name, "shapes": shapes, "weights": _html.b64_float32(torch.cat([t.flatten() for t in ordered]))})
    data = {"models": models, "titles": [LABELS[m["name"]] for m in models], "x_support": [round(float(x), 6) for x in support_inputs()],
            "grid": GRID, "lr": INNER_LR, "colors": _html.COLORS}
    controls = (_html.slider("amplitude", "amplitude", *RANGES["amplitude"], 0.1, v["amplitude"], digits=1)
                + _html.slider("phase", "phase", 0, 3.14, 0.02, v["phase"])
                + _html.slider("shots", "support points K", *RANGES["shots"], 1, v["shots"], digits=0)
                + _html.slider("steps", "SGD steps", *RANGES["steps"], 1, v["steps"], digits=0)
                + _html.button("resample", "new points"))
    caption = (f"Both networks take the chosen number of SGD steps (α = {INNER_LR}) on the support points' MSE, "
               "computed in this page from the shipped weights; faint lines: the intermediate steps.")
    return _html.render("sinusoid", controls, (700, 310), data, JS, caption, MAX_BYTES, narrow_size=(340, 540),
                        label=LABEL, title='adapting to a sine wave')
