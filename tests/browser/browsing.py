"""Helpers for the browser tests: where the book is, a local server, offline pages.

Not a test module and holds no fixtures (those are in ``conftest.py``): test modules
import what they need from here.

* ``serve(directory)``: a static HTTP server on 127.0.0.1 (an ephemeral port);
  ``jupyterlab(notebooks, work)``: JupyterLab on one, for the notebooks a student opens.
* ``OfflineGuard``: attached to a Playwright ``BrowserContext``, it aborts every request
  (and web socket) that does not go to 127.0.0.1, and records it, with every request's
  outcome and every uncaught JavaScript exception, so that a test can fail on any of them.
* ``load_book_page``: one built page, loaded at 1280 px in light and dark mode, probed
  once for everything the tests check (math, widgets, figures, horizontal scrolling),
  with a full-page screenshot of each mode.
* The page list (``_toc.yml``) and what a page's sources and executed notebook hold.

Environment: ``MAMLBOOK_BOOK_DIR`` (default: the repository) is the book root holding
``_toc.yml`` and ``_build/``; ``CHROMIUM`` (default ``/usr/bin/chromium``) the browser.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
from book_toc import docname, page_file, toc_entries  # tools/ is not a package
from jupyterlab_server import jupyterlab  # noqa: F401 (for the tests)
from figure_cells import alt_text_problem, draws_figure, figure_cells  # noqa: E402, F401 (also for the tests)

BOOK = Path(os.environ.get("MAMLBOOK_BOOK_DIR", REPO)).resolve()
HTML = BOOK / "_build" / "html"
EXECUTED = BOOK / "_build" / "jupyter_execute"
SHOTS = BOOK / "_build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 2400
PAGE_TIMEOUT = 60.0  # seconds for one page to load and render

# Headless, as root, nothing but the page: no sandbox (root), no GPU, no background
# traffic of the browser's own; and no host but 127.0.0.1 resolves, as on a machine
# offline (the OfflineGuard's routing catches every request before that).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def chromium_problem() -> str | None:
    """Why the browser cannot be launched, or None."""
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return None
    return (
        f"Chromium not found at {CHROMIUM}: run tools/install_chromium.sh "
        "(or set CHROMIUM=/path/to/chromium)"
    )


# --------------------------------------------------------------------------- pages


def toc_pages(toc_file: Path = BOOK / "_toc.yml") -> list[str]:
    """Docnames listed in the table of contents, root first, without extension."""
    if not toc_file.exists():
        return []
    return list(dict.fromkeys(docname(entry) for entry in toc_entries(toc_file)))


def shot_path(docname: str, mode: str) -> Path:
    """``_build/screenshots/chapters__04_fomaml.dark.png`` for chapters/04_fomaml, dark."""
    return SHOTS / f"{docname.replace('/', '__')}.{mode}.png"


def source_has_math(docname: str) -> bool:
    """Whether the page's source has $-math or a math block in its prose."""
    path = page_file(docname, BOOK)
    if path is None:
        return False
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
        )
    else:
        text = path.read_text()
    text = re.sub(r"(?ms)^(```|~~~)(?!\{math\}).*?^\1", "", text)  # code fences
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    return bool(re.search(r"\$[^$\s][^$]*\$|```\{math\}|\\begin\{", text))


# ------------------------------------------------- figures in the executed notebooks
# (which cells draw a figure: tools/figure_cells.py)


def image_outputs(docname: str) -> int:
    """Image outputs the executed notebook of a page shows (0 for a Markdown page)."""
    notebook = EXECUTED / f"{docname}.ipynb"
    if not notebook.exists():
        return 0
    return sum(c.images for c in figure_cells(notebook) if c.on_page)


# --------------------------------------------------------------------- http server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` on 127.0.0.1; yields the base URL (no trailing slash)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# ------------------------------------------------------------------ offline guard


def is_local(url: str) -> bool:
    """Whether a request for url stays on this machine (127.0.0.1 or inline data)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname == "127.0.0.1"


@dataclasses.dataclass
class Request:
    url: str
    status: int | None = None
    failure: str | None = None
    size: int = 0
    done: bool = False  # finished or failed: no longer in flight


class OfflineGuard:
    """Keeps a browser context offline and records what its pages did.

    Every request and web socket not to 127.0.0.1 is aborted before it leaves the
    browser and listed in ``blocked``; ``requests`` holds every request with its status
    or failure; ``page_errors`` every uncaught exception (Playwright's ``pageerror``,
    which includes syntax errors in inline scripts); ``console_errors`` the console's
    error messages (reported, not failed on: failed loads show there too).
    """

    def __init__(self, context):
        self.blocked: list[str] = []
        self.requests: list[Request] = []
        self._by_request: dict = {}  # Playwright request -> its record (kept alive)
        self.page_errors: list[str] = []
        self.console_errors: list[str] = []
        context.route(lambda url: True, self._route)
        context.route_web_socket(lambda url: True, self._route_web_socket)
        context.on("request", self._on_request)
        context.on("response", self._on_response)
        context.on("requestfailed", self._on_failed)
        context.on("requestfinished", lambda request: setattr(self._record(request), "done", True))
        context.on("page", self.watch)
        for page in context.pages:
            self.watch(page)

    def watch(self, page) -> None:
        page.on("pageerror", lambda err: self.page_errors.append(f"{err.name}: {err.message}"))
        page.on(
            "console",
            lambda msg: msg.type == "error" and self.console_errors.append(msg.text),
        )

    def _route(self, route) -> None:
        url = route.request.url
        if is_local(url):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")

    def _route_web_socket(self, ws) -> None:
        if is_local(ws.url):
            ws.connect_to_server()
        else:
            self.blocked.append(ws.url)
            ws.close()

    def _on_request(self, request) -> None:
        record = Request(request.url)
        self._by_request[request] = record
        self.requests.append(record)

    def _record(self, request) -> Request:
        record = self._by_request.get(request)
        if record is None:  # an event for a request seen before the guard
            record = Request(request.url)
            self._by_request[request] = record
            self.requests.append(record)
        return record

    def _on_response(self, response) -> None:
        record = self._record(response.request)
        record.status = response.status
        record.size = int(response.headers.get("content-length", 0) or 0)

    def _on_failed(self, request) -> None:
        record = self._record(request)
        record.failure, record.done = request.failure or "failed", True

    def settle(self, page, seconds: float = 10.0) -> None:
        """Wait (at most ``seconds``) until no request is in flight: fonts that typesetting
        asked for, a late favicon. A navigation aborts what is still loading, which the
        guard would report as a failed request."""
        deadline = time.monotonic() + seconds
        while any(not r.done for r in self.requests if is_local(r.url)) and time.monotonic() < deadline:
            page.wait_for_timeout(50)

    def problems(self) -> list[str]:
        """Off-machine attempts, failed requests and JavaScript exceptions, as text."""
        out = [f"request off this machine (blocked): {u}" for u in self.blocked]
        for r in self.requests:
            if not is_local(r.url) or urllib.parse.urlsplit(r.url).scheme in ("data", "blob", "about"):
                continue  # off-machine ones are listed above; inline data never fails
            if r.failure or (r.status or 0) >= 400:
                out.append(f"request failed ({r.failure or r.status}): {r.url}")
        out += [f"JavaScript exception: {e}" for e in self.page_errors]
        return out


def new_page(browser, *, width: int = WIDTH, height: int = HEIGHT, color_scheme: str = "light",
             touch: bool = False):
    """A fresh offline context and page: (context, page, guard); ``touch``: a phone's
    touch screen (CSS ``pointer: coarse``)."""
    context = browser.new_context(
        viewport={"width": width, "height": height},
        device_scale_factor=1,
        color_scheme=color_scheme,
        service_workers="block",
        has_touch=touch,
        is_mobile=touch,
    )
    context.set_default_timeout(PAGE_TIMEOUT * 1000)
    guard = OfflineGuard(context)
    page = context.new_page()
    return context, page, guard


# -------------------------------------------------------------- what a page shows

# Runs in the page once it has loaded; waits for MathJax and the widget manager.
PROBE_JS = r"""
async ([expected, timeoutMs]) => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const t0 = performance.now();
  const facts = {errors: []};
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await MathJax.startup.promise; } catch (e) { facts.errors.push('MathJax: ' + e); }
    facts.mathjax = MathJax.version;
  }
  const views = [...document.querySelectorAll(
      'script[type="application/vnd.jupyter.widget-view+json"]')];
  facts.view_ids = views.map((v) => JSON.parse(v.textContent).model_id);
  const rendered = () => views.every((v) => {
      const p = v.previousElementSibling;
      return p && p.classList.contains('widget-subarea') && p.querySelector('.jupyter-widgets');
  }) && expected.every((c) => document.querySelector('.widget-subarea .' + c));
  while (views.length && !rendered() && performance.now() - t0 < timeoutMs) await sleep(100);
  if (views.length) await sleep(500);  // late children, output images
  await document.fonts.ready;
  facts.widgets = views.map((v) => {
    const p = v.previousElementSibling;
    if (!p || !p.classList.contains('widget-subarea')) return {rendered: false};
    const r = p.getBoundingClientRect();
    return {rendered: !!p.querySelector('.jupyter-widgets'),
            text: p.textContent.slice(0, 200), width: r.width, height: r.height};
  });
  const cls = new Set();
  document.querySelectorAll('.widget-subarea, .widget-subarea *').forEach(
      (e) => e.classList.forEach((c) => c.startsWith('widget-') && cls.add(c)));
  facts.widget_classes = [...cls];
  facts.output_images = document.querySelectorAll('.widget-subarea .widget-output img').length;
  facts.math = [...document.querySelectorAll('.math')].map((e) => ({
      typeset: !!e.querySelector('mjx-container'), text: e.textContent.slice(0, 80)}));
  facts.mjx_containers = document.querySelectorAll('mjx-container').length;
  facts.mjx_tab_stops = document.querySelectorAll('mjx-container[tabindex]:not([tabindex="-1"])').length;
  facts.mjx_errors = [...document.querySelectorAll('mjx-merror, [data-mjx-error]')].map(
      (e) => e.getAttribute('data-mjx-error') || e.textContent);
  // Text outside code and rendered math, to look for raw TeX.
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, .widget-output';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const texts = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (el && !el.closest(skip) && el.offsetParent !== null) texts.push(n.textContent);
  }
  facts.text = texts.join(' ');
  facts.title = document.title;
  facts.elapsed_ms = performance.now() - t0;
  return facts;
}
"""

# The figures among the cell outputs (not widget images, not the demos' canvases):
# each <img> is made to load now (no lazy loading) and decoded; an inline <svg>
# counts as loaded when it has a size.
FIGURES_JS = r"""
async () => {
  const outside = (e) => !e.closest('.widget-subarea, mjx-container, .mbd');
  const imgs = [...document.querySelectorAll('.cell_output img')].filter(outside);
  await Promise.all(imgs.map(async (i) => {
    i.loading = 'eager';
    try { await i.decode(); } catch (e) { /* reported as not loaded */ }
  }));
  // Inline SVG figures (none while MyST-NB writes SVG outputs to files and uses
  // <img>); not icons: the copy button's, inside a code block or a button.
  const svgs = [...document.querySelectorAll('.cell_output svg')].filter(
      (s) => outside(s) && !s.parentElement.closest('svg, button, .highlight, .copybtn'));
  return [
    ...imgs.map((i) => ({kind: 'img', src: (i.getAttribute('src') || '').slice(0, 100),
        alt: i.getAttribute('alt') || '',
        linked: (i.closest('a.mb-figure-link') || {}).href === i.src,  // opens at full size (_assets/book.js)
        loaded: i.complete && i.naturalWidth > 0 && i.naturalHeight > 0,
        natural: [i.naturalWidth, i.naturalHeight],
        shown: [Math.round(i.getBoundingClientRect().width), Math.round(i.getBoundingClientRect().height)]})),
    ...svgs.map((s) => {
      const r = s.getBoundingClientRect();
      return {kind: 'svg', src: 'inline svg', loaded: r.width > 0 && r.height > 0,
              alt: s.getAttribute('aria-label') || '',
              natural: [Math.round(r.width), Math.round(r.height)],
              shown: [Math.round(r.width), Math.round(r.height)]};
    }),
  ];
}
"""

# Code and output blocks, and tables, wider than their box: a reader must scroll them
# sideways. Blocks: every `div.highlight pre` (cell input, text output, literal
# blocks), every `.cell_output` (rich outputs: HTML, images, widgets), every table
# (against its scroll wrapper, or its parent when it has none).
OVERFLOW_JS = r"""
() => {
  const blocks = new Map();
  document.querySelectorAll('div.highlight pre').forEach(
      (e) => blocks.set(e, e.closest('.cell_output') ? 'output' : 'code'));
  document.querySelectorAll('.cell_output').forEach((e) => blocks.has(e) || blocks.set(e, 'cell_output'));
  document.querySelectorAll('table').forEach((t) => blocks.set(t, 'table'));
  const out = [];
  for (const [el, kind] of blocks) {
    if (el.offsetParent === null) continue;  // not displayed
    let need, have;
    if (kind === 'table') {
      const box = el.closest('.pst-scrollable-table-container') || el.parentElement;
      need = Math.max(el.scrollWidth, el.getBoundingClientRect().width, box.scrollWidth);
      have = box.clientWidth;
    } else {
      need = el.scrollWidth; have = el.clientWidth;
    }
    out.push({kind, need: Math.round(need), have: Math.round(have), scrolls: need > have + 1,
              text: el.textContent.replace(/\s+/g, ' ').trim().slice(0, 60)});
  }
  return out;
}
"""

# Every displayed equation: whether its glyphs start left of its box (cut off, out of
# reach) or end right of it without a box that scrolls sideways to them; and by how many
# pixels its glyphs, its number included, pass its box's edges (0: it fits).
MATH_CLIP_JS = r"""
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const out = [];
  document.querySelectorAll('div.math').forEach((box) => {
    const c = box.querySelector('mjx-container');
    if (!c || box.offsetParent === null) return;  // not typeset, or not displayed (a closed dropdown)
    const b = box.getBoundingClientRect();
    let left = Infinity, right = -Infinity;
    c.querySelectorAll('mjx-c').forEach((g) => {
      const q = g.getBoundingClientRect();
      if (q.width > 0) { left = Math.min(left, q.left); right = Math.max(right, q.right); }
    });
    const scrolls = [c, box].some((e) => e.scrollWidth > e.clientWidth + 1
        && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX));
    out.push({text: box.textContent.replace(/\s+/g, ' ').trim().slice(0, 50),
              cut_left: left < b.left - 1, cut_right: right > b.right + 1 && !scrolls,
              overflow: Math.max(0, Math.round(right - b.right), Math.round(b.left - left))});
  });
  // inline formulas: the theme's span.math is at most the column wide (its overflow
  // hidden cut a long formula's end off on a phone)
  document.querySelectorAll('span.math').forEach((box) => {
    const m = box.querySelector('mjx-math');
    if (!m || box.offsetParent === null) return;
    const b = box.getBoundingClientRect(), q = m.getBoundingClientRect();
    const scrolls = box.scrollWidth > box.clientWidth + 1 && ['auto', 'scroll'].includes(getComputedStyle(box).overflowX);
    out.push({text: 'inline: ' + box.textContent.replace(/\s+/g, ' ').trim().slice(0, 42),
              cut_left: q.left < b.left - 1, cut_right: q.right > b.right + 1 && !scrolls,
              overflow: Math.max(0, Math.round(q.right - b.right), Math.round(b.left - q.left))});
  });
  return out;
}
"""

# Open every solution (sphinx-togglebutton's dropdowns) and every <details>, so that
# what they hold is laid out and measured too.
OPEN_DROPDOWNS_JS = r"""
() => {
  document.querySelectorAll('.toggle-hidden button.toggle-button, button.toggle-button.toggle-button-hidden')
    .forEach((b) => b.click());
  document.querySelectorAll('details').forEach((d) => { d.open = true; });
}
"""

THEME_JS = r"""
() => {
  const root = document.documentElement;
  const rgb = getComputedStyle(document.body).backgroundColor.match(/[\d.]+/g).map(Number);
  const luminance = (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255;
  return {theme: root.dataset.theme || '', mode: root.dataset.mode || '',
          background: getComputedStyle(document.body).backgroundColor, luminance};
}
"""

#: Resolves once MathJax has typeset the page (at once on a page without math).
TYPESET_JS = "() => window.MathJax && MathJax.startup ? MathJax.startup.promise.then(() => true) : true"

IS_DARK_JS = "() => document.documentElement.dataset.theme === 'dark'"

# Sets the theme's mode by hand, as its switcher does (pydata-sphinx-theme: data-mode,
# data-theme and localStorage), for a theme that would not follow the colour scheme.
SET_DARK_JS = r"""
() => {
  localStorage.setItem('mode', 'dark'); localStorage.setItem('theme', 'dark');
  document.documentElement.dataset.mode = 'dark';
  document.documentElement.dataset.theme = 'dark';
}
"""

# ipywidgets view -> CSS class its rendered element carries (ipywidgets 8 controls).
VIEW_CLASS = {
    "IntSliderView": "widget-slider",
    "FloatSliderView": "widget-slider",
    "FloatLogSliderView": "widget-slider",
    "IntRangeSliderView": "widget-slider",
    "FloatRangeSliderView": "widget-slider",
    "SelectionSliderView": "widget-slider",
    "ButtonView": "widget-button",
    "ToggleButtonView": "widget-toggle-button",
    "ToggleButtonsView": "widget-toggle-buttons",
    "OutputView": "widget-output",
    "HBoxView": "widget-hbox",
    "VBoxView": "widget-vbox",
    "GridBoxView": "widget-gridbox",
    "DropdownView": "widget-dropdown",
    "CheckboxView": "widget-checkbox",
    "RadioButtonsView": "widget-radio",
    "LabelView": "widget-label",
    "HTMLView": "widget-html",
    "HTMLMathView": "widget-htmlmath",
    "PlayView": "widget-play",
    "TextView": "widget-text",
    "IntTextView": "widget-text",
    "FloatTextView": "widget-text",
    "TabView": "widget-tab",
    "AccordionView": "widget-accordion",
    "ImageView": "widget-image",
}

RAW_TEX = re.compile(
    r"\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{|\$[^$\n]{0,200}?\\[A-Za-z]+[^$\n]{0,200}?\$"
)


def stored_widgets(html: str) -> tuple[dict | None, list[str]]:
    """The widget state stored in a built page, and the model ids of its views."""
    m = re.search(
        r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>',
        html,
        re.S,
    )
    state = json.loads(m.group(1)) if m else None
    view_ids = [
        json.loads(v)["model_id"]
        for v in re.findall(
            r'<script type="application/vnd.jupyter.widget-view\+json">(.*?)</script>',
            html,
            re.S,
        )
    ]
    return state, view_ids


def displayed_widgets(state: dict | None, view_ids: list[str]):
    """Expected CSS classes and Output-widget images of the displayed widget trees."""
    models = (state or {}).get("state", {})
    seen: set[str] = set()
    todo = list(view_ids)
    classes: set[str] = set()
    images = 0
    while todo:
        mid = todo.pop()
        if mid in seen or mid not in models:
            continue
        seen.add(mid)
        s = models[mid].get("state", {})
        if s.get("_view_name") in VIEW_CLASS:
            classes.add(VIEW_CLASS[s["_view_name"]])
        if s.get("_view_name") == "OutputView":
            images += sum(
                1 for o in s.get("outputs", []) if "image/png" in o.get("data", {})
            )
        for key, value in s.items():
            if key in ("layout", "style"):
                continue
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, str) and v.startswith("IPY_MODEL_"):
                    todo.append(v[len("IPY_MODEL_"):])
    return sorted(classes), images


@dataclasses.dataclass
class RenderedPage:
    """What one built page showed in Chromium, and what its files say it should."""

    docname: str
    facts: dict  # PROBE_JS
    figures: list[dict]  # FIGURES_JS
    blocks: list[dict]  # OVERFLOW_JS
    themes: dict  # mode -> THEME_JS after switching to it, and how
    requests: list[Request]
    problems: list[str]  # OfflineGuard.problems() + MathJax start-up errors
    console_errors: list[str]
    state: dict | None  # stored widget state
    view_ids: list[str]
    classes: list[str]  # widget CSS classes the stored views need
    widget_images: int  # images stored in Output widgets
    shots: dict  # mode -> screenshot path


def load_book_page(browser, base_url: str, docname: str) -> RenderedPage:
    """Load a built page offline at 1280 px, probe it, screenshot it light and dark."""
    raw = (HTML / f"{docname}.html").read_text()
    state, view_ids = stored_widgets(raw)
    classes, widget_images = displayed_widgets(state, view_ids)
    context, page, guard = new_page(browser)
    try:
        page.goto(f"{base_url}/{urllib.parse.quote(docname)}.html", wait_until="load")
        facts = page.evaluate(PROBE_JS, [classes, PAGE_TIMEOUT * 500])
        figures = page.evaluate(FIGURES_JS)
        blocks = page.evaluate(OVERFLOW_JS)
        shots = {"light": shot_path(docname, "light"), "dark": shot_path(docname, "dark")}
        SHOTS.mkdir(parents=True, exist_ok=True)
        themes = {"light": {**page.evaluate(THEME_JS), "how": "color_scheme=light"}}
        page.screenshot(path=shots["light"], full_page=True)
        # Dark: the colour scheme the theme follows in its default (auto) mode; set
        # by hand as the theme's switcher does when the page does not follow it.
        page.emulate_media(color_scheme="dark")
        how = "color_scheme=dark"
        try:
            page.wait_for_function(IS_DARK_JS, timeout=10_000)
        except PlaywrightTimeoutError:
            page.evaluate(SET_DARK_JS)
            how = "data-theme=dark"
        page.wait_for_timeout(300)  # transitions, demos redrawing for the theme
        dark = page.evaluate(THEME_JS)
        themes["dark"] = {**dark, "how": how}
        page.screenshot(path=shots["dark"], full_page=True)
    finally:
        context.close()
    return RenderedPage(
        docname=docname,
        facts=facts,
        figures=figures,
        blocks=blocks,
        themes=themes,
        requests=list(guard.requests),
        problems=guard.problems() + facts["errors"],
        console_errors=list(guard.console_errors),
        state=state,
        view_ids=view_ids,
        classes=classes,
        widget_images=widget_images,
        shots=shots,
    )
