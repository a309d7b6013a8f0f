"""The built book, opened in headless Chromium with no network: math and widgets render.

For every page in ``_toc.yml`` this serves ``_build/html`` on 127.0.0.1, loads the page
in Chromium (driven over the DevTools protocol through ``--remote-debugging-pipe``, so
no Python dependency beyond the standard library and PyYAML), and checks that

* every request stays on 127.0.0.1 and succeeds (no CDN, no 404 for a vendored file);
  name resolution for every other host is switched off, as on a machine offline;
* no uncaught JavaScript exception;
* MathJax typeset every Sphinx math element (an ``mjx-container`` inside each), shows
  no TeX error (``mjx-merror``) and left no raw TeX (``\\(``, ``$$``, ``$..\\cmd..$``)
  in the text outside code; a page whose source has ``$`` math must show some;
* every stored ipywidgets view rendered: one widget per view tag, no "Error displaying
  widget", the CSS class of each displayed widget kind present (``.widget-slider`` for a
  slider, ...), and the images stored in ``Output`` widgets drawn.

It writes a 1280x2400 PNG of each page to ``_build/screenshots/``.

Skips only when ``_build/html`` is missing (build the book first: ``make book``);
fails when Chromium is missing (``tools/install_chromium.sh``). Environment:
``MAMLBOOK_BOOK_DIR`` (default: the repository) is the book root holding ``_toc.yml``
and ``_build/html``; ``CHROMIUM`` (default ``/usr/bin/chromium``).
"""

from __future__ import annotations

import base64
import functools
import http.server
import itertools
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BOOK = Path(os.environ.get("MAMLBOOK_BOOK_DIR", REPO)).resolve()
HTML = BOOK / "_build" / "html"
SHOTS = BOOK / "_build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 2400
PAGE_TIMEOUT = 60.0  # seconds for one page to load and render


# --------------------------------------------------------------------------- pages


def toc_pages(toc_file: Path = BOOK / "_toc.yml") -> list[str]:
    """Docnames listed in the table of contents, root first, without extension."""
    if not toc_file.exists():
        return []
    toc = yaml.safe_load(toc_file.read_text())
    names: list[str] = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                names.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    names = [re.sub(r"\.(ipynb|md|rst)$", "", n) for n in names]
    return list(dict.fromkeys(names))


def source_has_math(docname: str) -> bool:
    """Whether the page's source has $-math or a math block in its prose."""
    for ext in (".ipynb", ".md"):
        path = BOOK / (docname + ext)
        if path.exists():
            break
    else:
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
    return bool(
        re.search(r"\$[^$\s][^$]*\$|```\{math\}|\\begin\{", text)
    )


# --------------------------------------------------------------------- http server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def server():
    if not HTML.is_dir():
        pytest.skip(f"{HTML} does not exist: build the book first (make book)")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


# ------------------------------------------------ Chromium over the DevTools pipe


class Chromium:
    """Headless Chromium driven through ``--remote-debugging-pipe``.

    Chromium reads NUL-terminated JSON messages from fd 3 and writes to fd 4.
    """

    def __init__(self, executable: str):
        self.profile = tempfile.mkdtemp(prefix="mamlbook-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        args = [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--mute-audio",
            # As offline: no host but 127.0.0.1 resolves.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--user-data-dir={self.profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # bash moves the pipe ends to fds 3 and 4, where Chromium expects them.
        wrapper = 'exec 3<&"$1" 4>&"$2"; shift 2; exec "$@"'
        self.proc = subprocess.Popen(
            ["bash", "-c", wrapper, "bash", str(to_chrome_r), str(from_chrome_w), *args],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._replies: dict[int, queue.Queue] = {}
        self._events: dict[str | None, list[dict]] = {}
        self._cond = threading.Condition()
        self._stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.version = self.send("Browser.getVersion", timeout=30)["product"]

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self._stderr.append(line)
            del self._stderr[:-50]

    def _read(self):
        buf = b""
        while True:
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                break
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                msg = json.loads(raw)
                if "id" in msg:
                    q = self._replies.get(msg["id"])
                    if q is not None:
                        q.put(msg)
                else:
                    with self._cond:
                        self._events.setdefault(msg.get("sessionId"), []).append(msg)
                        self._cond.notify_all()
        with self._cond:
            self._events.setdefault(None, []).append({"method": "_closed"})
            self._cond.notify_all()

    def send(self, method, params=None, session=None, timeout=PAGE_TIMEOUT):
        msg_id = next(self._ids)
        q: queue.Queue = queue.Queue()
        self._replies[msg_id] = q
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        with self._lock:
            os.write(self._to_chrome, data)
        try:
            reply = q.get(timeout=timeout)
        except queue.Empty:
            stderr = b"".join(self._stderr[-10:]).decode(errors="replace")
            raise TimeoutError(f"{method}: no reply in {timeout} s\n{stderr}") from None
        finally:
            del self._replies[msg_id]
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def events(self, session) -> list[dict]:
        with self._cond:
            return list(self._events.get(session, []))

    def wait_event(self, session, method, timeout=PAGE_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self._events.get(session, []):
                    if ev["method"] == method:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {method} in {timeout} s")
                self._cond.wait(left)

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(server):
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run tools/install_chromium.sh "
            "(or set CHROMIUM=/path/to/chromium)",
            pytrace=False,
        )
    chrome = Chromium(CHROMIUM)
    yield chrome
    chrome.close()


# -------------------------------------------------------------- what a page shows

# Runs in the page once it has loaded; waits for MathJax and the widget manager.
PROBE_JS = r"""
(async (timeoutMs) => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const t0 = performance.now();
  const facts = {errors: []};
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await MathJax.startup.promise; } catch (e) { facts.errors.push('MathJax: ' + e); }
    facts.mathjax = MathJax.version;
  }
  const views = [...document.querySelectorAll(
      'script[type="application/vnd.jupyter.widget-view+json"]')];
  const stateTag = document.querySelector(
      'script[type="application/vnd.jupyter.widget-state+json"]');
  facts.widget_state = stateTag ? JSON.parse(stateTag.textContent) : null;
  facts.view_ids = views.map((v) => JSON.parse(v.textContent).model_id);
  const expected = %s;  // CSS classes expected, filled in by the test
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
})(%d)
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

# Upstream bugs that throw on every page, harmless to the reader; kept out of the check.
KNOWN_JS_ERRORS = (
    # sphinx-thebe 0.3.1 under Sphinx 7.4 writes its inline config script twice; the
    # second `const` throws. Thebe is off in this book (no kernel to launch).
    "SyntaxError: Identifier 'THEBE_JS_URL' has already been declared",
)

RAW_TEX = re.compile(
    r"\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{|\$[^$\n]{0,200}?\\[A-Za-z]+[^$\n]{0,200}?\$"
)


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


class Tab:
    """One page loaded in its own tab of ``chrome``: evaluate JavaScript, read events, close.

    Page, Network and Runtime events are recorded from the start, so a test can check
    every request the page made.
    """

    def __init__(self, chrome: Chromium, url: str, width: int = WIDTH, height: int = HEIGHT):
        self.chrome = chrome
        self.target = chrome.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = chrome.send("Target.attachToTarget", {"targetId": self.target, "flatten": True})["sessionId"]
        try:
            for domain in ("Page", "Network", "Runtime"):
                chrome.send(f"{domain}.enable", session=self.session)
            chrome.send("Emulation.setDeviceMetricsOverride",
                        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                        session=self.session)
            nav = chrome.send("Page.navigate", {"url": url}, session=self.session)
            if nav.get("errorText"):
                raise AssertionError(f"{url}: {nav['errorText']}")
            chrome.wait_event(self.session, "Page.loadEventFired")
        except BaseException:
            self.close()
            raise

    def evaluate(self, expression: str, await_promise: bool = False):
        res = self.chrome.send("Runtime.evaluate", {"expression": expression, "awaitPromise": await_promise,
                                                    "returnByValue": True}, session=self.session)
        if "exceptionDetails" in res:
            raise AssertionError(f"JavaScript failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, path: Path) -> None:
        png = self.chrome.send("Page.captureScreenshot", {"format": "png"}, session=self.session)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(png))

    def events(self) -> list[dict]:
        return self.chrome.events(self.session)

    def close(self) -> None:
        self.chrome.send("Target.closeTarget", {"targetId": self.target})


def load_page(chrome: Chromium, url: str, expected_classes=(), screenshot: Path | None = None):
    """Open url in a fresh tab; return (facts from PROBE_JS, request log, JS errors)."""
    tab = Tab(chrome, url)
    try:
        facts = tab.evaluate(PROBE_JS % (json.dumps(list(expected_classes)), PAGE_TIMEOUT * 500), await_promise=True)
        if screenshot is not None:
            tab.screenshot(screenshot)
        events = tab.events()
    finally:
        tab.close()
    requests, status, failed, size, js_errors = {}, {}, {}, {}, []
    for ev in events:
        p = ev.get("params", {})
        if ev["method"] == "Network.requestWillBeSent":
            requests[p["requestId"]] = p["request"]["url"]
        elif ev["method"] == "Network.responseReceived":
            status[p["requestId"]] = p["response"]["status"]
        elif ev["method"] == "Network.loadingFinished":
            size[p["requestId"]] = p.get("encodedDataLength", 0)
        elif ev["method"] == "Network.loadingFailed":
            failed[p["requestId"]] = p.get("errorText", "failed")
        elif ev["method"] == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            js_errors.append(d.get("exception", {}).get("description") or d.get("text"))
    log = [
        (u, status.get(rid), failed.get(rid), size.get(rid, 0))
        for rid, u in requests.items()
    ]
    return facts, log, js_errors


# ------------------------------------------------------------------------ the test

PAGES = toc_pages()


def test_toc_lists_pages():
    assert PAGES, f"no pages found in {BOOK / '_toc.yml'}"


@pytest.mark.parametrize("docname", PAGES)
def test_page_renders_offline(docname, server, browser):
    html_file = HTML / f"{docname}.html"
    assert html_file.exists(), f"{html_file} missing: is the build stale or incomplete?"
    url = f"{server}/{urllib.parse.quote(docname)}.html"
    raw = html_file.read_text()

    # Widget kinds that must show, from the stored state, for the page to wait on.
    m = re.search(
        r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>',
        raw,
        re.S,
    )
    state = json.loads(m.group(1)) if m else None
    view_ids = [
        json.loads(v)["model_id"]
        for v in re.findall(
            r'<script type="application/vnd.jupyter.widget-view\+json">(.*?)</script>',
            raw,
            re.S,
        )
    ]
    classes, images = displayed_widgets(state, view_ids)

    shot = SHOTS / (docname.replace("/", "__") + ".png")
    facts, log, js_errors = load_page(browser, url, classes, screenshot=shot)
    problems: list[str] = []

    # Network: local only, and everything found.
    for u, status, failed, _ in log:
        scheme = urllib.parse.urlsplit(u).scheme
        host = urllib.parse.urlsplit(u).hostname
        if scheme in ("data", "blob", "about"):
            continue
        if host != "127.0.0.1":
            problems.append(f"request off this machine: {u}")
        elif u.endswith("/favicon.ico"):
            continue
        elif failed or (status or 0) >= 400:
            problems.append(f"request failed ({failed or status}): {u}")
    problems += [
        f"JavaScript exception: {e}" for e in js_errors if e not in KNOWN_JS_ERRORS
    ]
    problems += facts["errors"]

    # Math.
    untypeset = [e["text"] for e in facts["math"] if not e["typeset"]]
    if untypeset:
        problems.append(f"{len(untypeset)} math elements not typeset, e.g. {untypeset[:3]}")
    if facts["mjx_errors"]:
        problems.append(f"MathJax errors: {facts['mjx_errors'][:5]}")
    if source_has_math(docname) and facts["mjx_containers"] == 0:
        problems.append("the source has math, the page shows none (mjx-container)")
    if facts["math"] and "mathjax" not in facts:
        problems.append("math on the page but MathJax did not load")
    raw_tex = sorted(set(RAW_TEX.findall(facts["text"])))
    if raw_tex:
        problems.append(f"raw TeX left in the text: {raw_tex[:5]}")

    # Widgets.
    if view_ids and state is None:
        problems.append("widget views on the page but no widget state stored")
    for mid, w in zip(facts["view_ids"], facts["widgets"]):
        if not w["rendered"]:
            problems.append(f"widget {mid} not rendered")
        elif "Error displaying widget" in w["text"] or "Error creating widget" in w["text"]:
            problems.append(f"widget {mid}: {w['text']!r}")
        elif w["height"] <= 0 or w["width"] <= 0:
            problems.append(f"widget {mid} rendered with zero size")
    missing = sorted(set(classes) - set(facts["widget_classes"]))
    if missing:
        problems.append(f"widget kinds not drawn: {missing}")
    if facts["output_images"] < images:
        problems.append(
            f"{images} images stored in Output widgets, {facts['output_images']} drawn"
        )

    vendored = sum(
        n for u, *_, n in log if re.search(r"/_static/(mathjax|jupyter-widgets)/", u)
    )
    summary = (
        f"{docname}: {len(facts['math'])} math elements, {facts['mjx_containers']} "
        f"mjx-container, {len(view_ids)} widget views ({', '.join(classes) or '-'}), "
        f"{images} Output-widget images; {len(log)} requests, "
        f"{sum(n for *_, n in log) / 1e3:.0f} kB ({vendored / 1e3:.0f} kB from _vendor), "
        f"{facts['elapsed_ms']:.0f} ms; screenshot {shot}"
    )
    print(summary)
    assert not problems, summary + "\n  " + "\n  ".join(problems)
