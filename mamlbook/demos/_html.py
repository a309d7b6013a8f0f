"""Shared pieces of the static (kernel-free) demos: HTML controls, a tiny canvas plotting
library in JavaScript, and the `StaticDemo` display object.

A static demo is one self-contained HTML fragment::

    <div class="mbd" id="mbd-<kind>-<n>-<hash>">   controls (<input type=range>, <button>)
                                                   <canvas>, readout
    <script> (function () { <library>; <demo code> })(); </script>

with no external URL and no id other than the root's, so any number of demos can share
a page. The script finds its controls inside its own root (``data-name`` attributes),
redraws on every ``input`` event, and leaves the numbers it drew on the root element
as ``root.mbLast`` (the browser test compares them with the Python functions).
"""
from __future__ import annotations

import base64
import hashlib
import html
import itertools
import json

import numpy as np

_COUNTER = itertools.count(1)

COLORS = {"maml": "#1f77b4", "fomaml": "#ff7f0e", "reptile": "#2ca02c", "imaml": "#d62728",
          "pretrain": "#7f7f7f", "truth": "#000000"}

CSS = """
.mbd{font:13px/1.35 system-ui,sans-serif;border:1px solid var(--pst-color-border,#ddd);border-radius:6px;padding:8px;margin:8px 0;max-width:100%;color:inherit}
.mbd .mbd-ctls{display:flex;flex-wrap:wrap;gap:4px 16px;align-items:center;margin-bottom:6px}
.mbd label{display:inline-flex;align-items:center;gap:6px;white-space:nowrap}
.mbd input[type=range]{width:120px}
.mbd output{display:inline-block;min-width:3.2em;font-variant-numeric:tabular-nums}
.mbd canvas{max-width:100%;height:auto;display:block}
.mbd .mbd-read{font-variant-numeric:tabular-nums;margin-top:4px}
.mbd .mbd-cap{font-size:12px;opacity:.75}
.mbd .mbd-sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
html[data-theme=dark] .mbd canvas,body[data-jp-theme-light=false] .mbd canvas{filter:invert(.88) hue-rotate(180deg)}
.mbd button[aria-pressed=true]{background:rgba(31,119,180,.2);border-color:#1f77b4;font-weight:600}
.mbd canvas:focus-visible{outline:3px solid #1f77b4;outline-offset:2px}
@media (pointer:coarse){.mbd input[type=range]{height:28px;width:180px}.mbd .mbd-ctls{row-gap:10px}.mbd button{min-height:36px;padding:0 12px}}
"""

#: A box narrower than this fraction of a demo's wide canvas (a phone) gets the demo's
#: narrow layout (`render`'s ``narrow_size``; the game sizes its own canvas by it too).
NARROW_FRACTION = 0.8

# The plotting library every static demo carries (inside its own closure: no globals).
JS_LIB = r"""
const MB = (() => {
  // Layout by width: in a box whose content is narrower than NARROW_FRACTION of a
  // demo's wide canvas (a phone), a demo with a narrow layout (data-narrow="w,h",
  // beside data-wide) draws that one at its own size, its panels stacked, so that its
  // text keeps its size instead of shrinking with the canvas.
  const NARROW_FRACTION = __NARROW_FRACTION__;
  const contentWidth = (root) => {  // 0: a box not laid out yet (hidden)
    if (!root.clientWidth) return 0;
    const st = getComputedStyle(root);
    return root.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight);
  };
  const isNarrow = (root, wideWidth) => { const w = contentWidth(root); return w > 0 && w < NARROW_FRACTION * wideWidth; };
  const resize = (cv, w, h) => { if (+cv.dataset.w !== w || +cv.dataset.h !== h) {
    cv.dataset.w = w; cv.dataset.h = h; cv.width = 0; cv.style.width = w + 'px'; } };
  const narrow = (cv) => cv.dataset.layout === 'narrow';
  // Redraw when the box's width changes (on the next frame, not inside the observer's
  // callback: the redraw changes the box's height, which it would report as a loop).
  const watch = (root, redraw) => { let last = contentWidth(root);
    const check = () => { const w = contentWidth(root); if (w !== last) { last = w; redraw(); } };
    if (window.ResizeObserver) new ResizeObserver(() => requestAnimationFrame(check)).observe(root);
    else window.addEventListener('resize', check); };
  const setup = (cv) => {
    if (cv.dataset.narrow) {
      const [W, H] = cv.dataset.wide.split(',').map(Number), [nw, nh] = cv.dataset.narrow.split(',').map(Number);
      const small = isNarrow(cv.closest('.mbd'), W);
      resize(cv, small ? nw : W, small ? nh : H); cv.dataset.layout = small ? 'narrow' : 'wide';
    }
    const w = +cv.dataset.w, h = +cv.dataset.h, r = window.devicePixelRatio || 1;
    if (cv.width !== Math.round(w * r)) { cv.width = Math.round(w * r); cv.height = Math.round(h * r); }
    const ctx = cv.getContext('2d');
    ctx.setTransform(r, 0, 0, r, 0, 0); ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, w, h);
    return ctx;
  };
  const panel = (ctx, box, xlim, ylim) => {
    const [x0, y0, w, h] = box;
    return {ctx, box, xlim, ylim,
      X: (x) => x0 + (x - xlim[0]) / (xlim[1] - xlim[0]) * w,
      Y: (y) => y0 + h - (y - ylim[0]) / (ylim[1] - ylim[0]) * h};
  };
  const ticks = (lo, hi) => {
    const raw = (hi - lo) / 5, e = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * e).find((s) => (hi - lo) / s <= 6);
    const out = [];
    for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + 1e-9 * step; t += step) out.push(+t.toFixed(10));
    return out;
  };
  const text = (ctx, s, x, y, o = {}) => {
    ctx.fillStyle = o.color || '#222'; ctx.font = o.font || '11px sans-serif';
    ctx.textAlign = o.align || 'center'; ctx.textBaseline = o.base || 'middle'; ctx.fillText(s, x, y);
  };
  const frame = (p, title, xlabel, ylabel) => {
    const {ctx, box: [x0, y0, w, h]} = p;
    ctx.strokeStyle = '#444'; ctx.lineWidth = 1; ctx.strokeRect(x0, y0, w, h);
    for (const t of ticks(...p.xlim)) { const X = p.X(t);
      ctx.beginPath(); ctx.moveTo(X, y0 + h); ctx.lineTo(X, y0 + h + 4); ctx.stroke(); text(ctx, String(t), X, y0 + h + 12); }
    for (const t of ticks(...p.ylim)) { const Y = p.Y(t);
      ctx.beginPath(); ctx.moveTo(x0, Y); ctx.lineTo(x0 - 4, Y); ctx.stroke(); text(ctx, String(t), x0 - 6, Y, {align: 'right'}); }
    if (title) text(ctx, title, x0 + w / 2, y0 - 9, {font: 'bold 12px sans-serif'});
    if (xlabel) text(ctx, xlabel, x0 + w / 2, y0 + h + 26);
    if (ylabel) { ctx.save(); ctx.translate(x0 - 30, y0 + h / 2); ctx.rotate(-Math.PI / 2); text(ctx, ylabel, 0, 0); ctx.restore(); }
  };
  const clip = (p, fn) => { const c = p.ctx; c.save(); c.beginPath(); c.rect(...p.box); c.clip(); fn(); c.restore(); };
  const linspace = (a, b, n) => Array.from({length: n}, (_, i) => a + (b - a) * i / (n - 1));
  const grid = (xs, ys, f) => { const Z = new Float64Array(xs.length * ys.length);
    ys.forEach((y, j) => xs.forEach((x, i) => { Z[j * xs.length + i] = f(x, y); })); return Z; };
  const contour = (p, Z, xs, ys, level, color, width) => {  // marching squares
    const nx = xs.length, c = p.ctx; c.beginPath();
    for (let j = 0; j + 1 < ys.length; j++) for (let i = 0; i + 1 < nx; i++) {
      const z = [Z[j * nx + i], Z[j * nx + i + 1], Z[(j + 1) * nx + i + 1], Z[(j + 1) * nx + i]];
      const px = [xs[i], xs[i + 1], xs[i + 1], xs[i]], py = [ys[j], ys[j], ys[j + 1], ys[j + 1]];
      const pts = [];
      for (let e = 0; e < 4; e++) { const a = z[e] - level, b = z[(e + 1) % 4] - level, f = (e + 1) % 4;
        if (Number.isFinite(a) && Number.isFinite(b) && (a < 0) !== (b < 0)) { const t = a / (a - b);
          pts.push([p.X(px[e] + t * (px[f] - px[e])), p.Y(py[e] + t * (py[f] - py[e]))]); } }
      for (let k = 0; k + 1 < pts.length; k += 2) { c.moveTo(...pts[k]); c.lineTo(...pts[k + 1]); }
    }
    c.strokeStyle = color; c.lineWidth = width || 1; c.stroke();
  };
  const contours = (p, Z, xs, ys, n, color) => {
    let lo = Infinity, hi = -Infinity; for (const z of Z) if (Number.isFinite(z)) { lo = Math.min(lo, z); hi = Math.max(hi, z); }
    if (!(hi > lo)) return [];
    const levels = linspace(lo, hi, n + 2).slice(1, -1);
    clip(p, () => levels.forEach((l) => contour(p, Z, xs, ys, l, color || '#999', 0.8)));
    return levels;
  };
  const STOPS = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
                 [31, 158, 137], [53, 183, 121], [110, 206, 88], [181, 222, 43], [253, 231, 37]];
  const viridis = (t) => { t = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
    const i = Math.min(STOPS.length - 2, Math.floor(t)), f = t - i;
    return STOPS[i].map((v, k) => Math.round(v + f * (STOPS[i + 1][k] - v))); };
  const heat = (p, Z, nx, ny, lo, hi) => {  // row 0 of Z is the bottom row (ys[0])
    const off = document.createElement('canvas'); off.width = nx; off.height = ny;
    const oc = off.getContext('2d'), img = oc.createImageData(nx, ny);
    for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
      const [r, g, b] = viridis((Z[j * nx + i] - lo) / (hi - lo)), k = 4 * ((ny - 1 - j) * nx + i);
      img.data[k] = r; img.data[k + 1] = g; img.data[k + 2] = b; img.data[k + 3] = 255; }
    oc.putImageData(img, 0, 0); p.ctx.imageSmoothingEnabled = true; p.ctx.drawImage(off, ...p.box);
  };
  const line = (p, xs, ys, color, width, dash) => { const c = p.ctx; c.beginPath();
    xs.forEach((x, i) => (i ? c.lineTo(p.X(x), p.Y(ys[i])) : c.moveTo(p.X(x), p.Y(ys[i]))));
    c.setLineDash(dash || []); c.strokeStyle = color; c.lineWidth = width || 1.5; c.stroke(); c.setLineDash([]); };
  const dot = (p, x, y, r, fill, stroke, shape) => { const c = p.ctx, X = p.X(x), Y = p.Y(y); c.beginPath();
    if (shape === 'tri') { c.moveTo(X, Y - r); c.lineTo(X + r, Y + r * 0.8); c.lineTo(X - r, Y + r * 0.8); c.closePath(); }
    else if (shape === 'star') { for (let k = 0; k < 10; k++) { const a = Math.PI * k / 5 - Math.PI / 2, q = k % 2 ? r * 0.45 : r;
      c.lineTo(X + q * Math.cos(a), Y + q * Math.sin(a)); } c.closePath(); }
    else c.arc(X, Y, r, 0, 2 * Math.PI);
    if (fill) { c.fillStyle = fill; c.fill(); } if (stroke) { c.strokeStyle = stroke; c.lineWidth = 1.2; c.stroke(); } };
  const arrowPx = (c, X, Y, X2, Y2, color, width) => {  // pixel coordinates
    const L = Math.hypot(X2 - X, Y2 - Y); if (L < 0.5) return;
    const hl = Math.min(8, 0.35 * L + 2), ux = (X2 - X) / L, uy = (Y2 - Y) / L;
    c.strokeStyle = c.fillStyle = color; c.lineWidth = width || 1.5; c.beginPath(); c.moveTo(X, Y);
    c.lineTo(X2 - ux * hl * 0.8, Y2 - uy * hl * 0.8); c.stroke(); c.beginPath(); c.moveTo(X2, Y2);
    c.lineTo(X2 - ux * hl - uy * hl * 0.45, Y2 - uy * hl + ux * hl * 0.45);
    c.lineTo(X2 - ux * hl + uy * hl * 0.45, Y2 - uy * hl - ux * hl * 0.45); c.closePath(); c.fill(); };
  const arrow = (p, x, y, dx, dy, color, width) => arrowPx(p.ctx, p.X(x), p.Y(y), p.X(x + dx), p.Y(y + dy), color, width);
  const legend = (ctx, items, x, y) => items.forEach(([label, color, dash], k) => { const Y = y + 14 * k;
    ctx.beginPath(); ctx.setLineDash(dash || []); ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.moveTo(x, Y);
    ctx.lineTo(x + 18, Y); ctx.stroke(); ctx.setLineDash([]); text(ctx, label, x + 22, Y, {align: 'left'}); });
  const bytes = (b64) => Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  const f32 = (b64) => { const b = bytes(b64), v = new DataView(b.buffer), out = new Float64Array(b.length / 4);
    for (let i = 0; i < out.length; i++) out[i] = v.getFloat32(4 * i, true); return out; };
  const controls = (root, onChange) => {  // every input with data-name; value() reads them all
    const inputs = [...root.querySelectorAll('input[data-name]')];
    const value = () => Object.fromEntries(inputs.map((el) => [el.dataset.name,
      el.dataset.log ? Math.pow(10, +el.value) : +el.value]));
    const show = () => inputs.forEach((el) => { const o = el.parentElement.querySelector('output');
      const shown = (el.dataset.log ? Math.pow(10, +el.value) : +el.value).toFixed(+el.dataset.digits);
      if (o) o.textContent = shown;
      el.setAttribute('aria-valuetext', shown); });  // a log slider's position is not its value
    const set = (name, v) => { root.querySelector(`input[data-name="${name}"]`).value = v; };
    inputs.forEach((el) => el.addEventListener('input', () => { show(); onChange(value()); }));
    show(); watch(root, () => onChange(value()));
    return {value, set, fire: () => { show(); onChange(value()); }};
  };
  const fmt = (x, d) => (Number.isFinite(x) ? x.toFixed(d === undefined ? 3 : d) : String(x));
  // The readout shows the words at once; a screen reader hears them from a hidden copy
  // (aria-live) written SAY_DELAY ms after the last change, so that a slider dragged or
  // an arrow key held is announced once, where it stops, not once per step. Both are set
  // only when the words change (a redraw for a resize or a focus says nothing new).
  // The first words go to the copy at once, as the page is read in (not announced then,
  // where a late write would be); how = 'now': an event's result, said at once (a pick
  // in the game); how = 'shown': shown only, nothing said (what a blur redraws).
  const SAY_DELAY = 600;
  const say = (el, text, how) => {
    if (el.textContent !== text) el.textContent = text;
    const sr = el.parentElement.querySelector('.mbd-sr');
    clearTimeout(sr.mbTimer);
    const write = () => { if (sr.textContent !== el.textContent) sr.textContent = el.textContent; };
    if (how === 'shown') return;
    if (how === 'now' || !sr.mbStarted) { sr.mbStarted = true; write(); return; }
    sr.mbTimer = setTimeout(write, SAY_DELAY);
  };
  return {setup, narrow, isNarrow, resize, watch, panel, frame, clip, linspace, grid, contour, contours, heat, viridis, line, dot, arrow,
          arrowPx, legend, text, bytes, f32, controls, fmt, say};
})();
""".replace("__NARROW_FRACTION__", repr(NARROW_FRACTION))


def controls_from(defaults: dict, initial: dict) -> dict:
    """``defaults`` updated with a demo's ``**initial`` control values; unknown names are a TypeError."""
    unknown = sorted(set(initial) - set(defaults))
    if unknown:
        raise TypeError(f"unknown controls {unknown}; the controls are {sorted(defaults)}")
    return {**defaults, **initial}


def slider(name: str, label: str, low: float, high: float, step: float, value: float, digits: int = 2,
           log: bool = False, spoken: str | None = None) -> str:
    """An ``<input type=range>`` with a label and a live readout (``log``: the slider moves log10 of the value;
    ``spoken``: its accessible name where the visible label is too short to say what it moves, which
    begins with the label's words)."""
    pos = np.log10(value) if log else value
    log_attr = ' data-log="1"' if log else ""
    if spoken is not None and not spoken.startswith(label):
        raise ValueError(f"spoken must begin with the visible label {label!r} (what a voice user says), got {spoken!r}")
    name_attr = f' aria-label="{html.escape(spoken)}"' if spoken else ""
    return (f'<label>{html.escape(label)} <input type="range" data-name="{name}" min="{low}" max="{high}" '
            f'step="{step}" value="{pos:.6g}" data-digits="{digits}"{log_attr}{name_attr}>'
            f'<output aria-hidden="true"></output></label>')  # the slider says its value (aria-valuetext)


def button(action: str, label: str) -> str:
    return f'<button type="button" data-action="{action}">{html.escape(label)}</button>'


def b64_float32(values) -> str:
    """Little-endian float32 bytes of ``values``, base64 (read in JS by ``MB.f32``)."""
    return base64.b64encode(np.asarray(values, dtype="<f4").ravel().tobytes()).decode("ascii")


def b64_uint8(values) -> str:
    return base64.b64encode(np.asarray(values, dtype=np.uint8).ravel().tobytes()).decode("ascii")


def _json(data) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


class StaticDemo:
    """A kernel-free demo: ``_repr_html_`` gives the self-contained HTML fragment.

    ``root_id`` is the unique id of its root element; ``nbytes`` its size in bytes
    (UTF-8), which must stay below ``max_bytes``.
    """

    def __init__(self, html_text: str, root_id: str, max_bytes: int):
        self.html = html_text
        self.root_id = root_id
        self.max_bytes = max_bytes
        if self.nbytes > max_bytes:
            raise ValueError(f"static demo {root_id} is {self.nbytes} bytes, above its budget of {max_bytes}")

    @property
    def nbytes(self) -> int:
        return len(self.html.encode("utf-8"))

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"<StaticDemo {self.root_id}: {self.nbytes / 1024:.1f} KiB of self-contained HTML + JS>"


def render(kind: str, controls: str, canvas_size: tuple[int, int], data: dict, js: str, caption: str,
           max_bytes: int, narrow_size: tuple[int, int] | None = None, *, label: str, title: str) -> StaticDemo:
    """Assemble one static demo.

    ``js`` runs with ``root`` (the demo's element), ``canvas``, ``readout``, ``DATA``
    (the JSON-serialisable ``data``) and ``MB`` (the plotting library) in scope.
    ``label``: what the canvas shows, in words (its accessible name, which a screen
    reader says; the readout below it is announced when its words change and stay,
    `MB.say`). ``title``: the demo's name, a few words; the demo is a group named
    "Interactive demo: <title>", so that a screen reader says where one demo ends and
    the next begins.
    ``narrow_size``: the canvas of the demo's narrow layout (its panels stacked, for a
    phone), drawn when the box is narrower than `NARROW_FRACTION` of ``canvas_size``'s width; the
    ``js`` then asks ``MB.narrow(canvas)`` after ``MB.setup(canvas)`` which to draw.
    """
    data_json = _json(data)
    digest = hashlib.sha1((kind + controls + data_json).encode()).hexdigest()[:6]
    root_id = f"mbd-{kind}-{next(_COUNTER)}-{digest}"
    w, h = canvas_size
    sizes = f' data-wide="{w},{h}" data-narrow="{narrow_size[0]},{narrow_size[1]}"' if narrow_size else ""
    group = f"Interactive demo: {title}"
    text = (f'<div class="mbd tex2jax_ignore mathjax_ignore" id="{root_id}" role="group" '
            f'aria-label="{html.escape(group)}"><style>{CSS.strip()}</style>'
            f'<div class="mbd-ctls">{controls}</div>'
            f'<canvas data-w="{w}" data-h="{h}"{sizes} width="{w}" height="{h}" style="width:{w}px" role="img" '
            f'aria-label="{html.escape(label)}"></canvas>'
            f'<div class="mbd-read" aria-hidden="true"></div><div class="mbd-sr" aria-live="polite" aria-atomic="true">'
            f'</div><div class="mbd-cap">{caption}</div>'
            f'</div>\n<script>(function () {{"use strict";\n{JS_LIB}\n'
            f'const root = document.getElementById("{root_id}") || document.currentScript.previousElementSibling, canvas = root.querySelector("canvas"), '
            f'readout = root.querySelector(".mbd-read");\nconst DATA = {data_json};\n{js}\n}})();</script>')
    return StaticDemo(text, root_id, max_bytes)
