"""The built book, opened in headless Chromium with no network: it loads, math and widgets render.

For every page in ``_toc.yml`` this serves ``_build/html`` on 127.0.0.1, loads the page
through Playwright in the system Chromium at 1280 px (``browsing.load_book_page``) and
checks that

* every request stays on 127.0.0.1 (any other is aborted, and fails the test) and
  succeeds (no CDN, no 404 for a vendored file);
* no uncaught JavaScript exception, none excused;
* MathJax typeset every Sphinx math element (an ``mjx-container`` inside each), shows
  no TeX error (``mjx-merror``) and left no raw TeX (``\\(``, ``$$``, ``$..\\cmd..$``)
  in the text outside code; a page whose source has ``$`` math must show some; no
  formula is a Tab stop (MathJax's default: 272 of them on chapter 06's page);
* every stored ipywidgets view rendered: one widget per view tag, no "Error displaying
  widget", the CSS class of each displayed widget kind present (``.widget-slider`` for a
  slider, ...), and the images stored in ``Output`` widgets drawn;
* in every table of a chapter (``mamlbook.notebook.table``; the API page's come from
  docstrings), a column of numbers (after the first, which names the rows) is
  right-aligned with digits of one width, so the numbers' right edges line up row under
  row, and a negative number has a minus sign ("−0.108"), not a hyphen;
* a full-page screenshot of the page in light and in dark mode is in
  ``_build/screenshots/`` (``chapters__04_fomaml.light.png``, ``.dark.png``), and the
  dark one is dark.

The figures and horizontal scrolling are checked in ``test_figures.py`` on the same load.
Skips only when ``_build/html`` is missing (build the book first: ``make book``);
fails when Chromium is missing (``tools/install_chromium.sh``).
"""

from __future__ import annotations

import re

import pytest

from browsing import BOOK, RAW_TEX, new_page, serve, source_has_math, toc_pages

PAGES = toc_pages()


def test_toc_lists_pages():
    assert PAGES, f"no pages found in {BOOK / '_toc.yml'}"


def test_the_offline_guard_catches_what_the_page_tests_fail_on(browser, tmp_path):
    """Requests off the machine never leave it and are reported; so are 404s and exceptions."""
    (tmp_path / "page.html").write_text(
        "<script>const X = 1;</script><script>const X = 2;</script>"
        '<img src="http://example.com/a.png"><img src="missing.png">'
        "<script>fetch('https://cdn.jsdelivr.net/npm/x.js').catch(() => {});"
        "new WebSocket('wss://example.org/'); throw new Error('boom');</script>"
    )
    with serve(tmp_path) as base:
        context, page, guard = new_page(browser)
        try:
            page.goto(f"{base}/page.html")
            page.wait_for_timeout(500)
        finally:
            context.close()
    assert sorted(guard.blocked) == ["http://example.com/a.png", "https://cdn.jsdelivr.net/npm/x.js",
                                     "wss://example.org/"]  # fmt: skip
    problems = "\n".join(guard.problems())
    assert f"request failed (404): {base}/missing.png" in problems
    assert "Identifier 'X' has already been declared" in problems and "Error: boom" in problems


def summary(page) -> str:
    f = page.facts
    vendored = sum(
        r.size for r in page.requests if re.search(r"/_static/(mathjax|jupyter-widgets)/", r.url)
    )
    return (
        f"{page.docname}: {len(f['math'])} math elements, {f['mjx_containers']} "
        f"mjx-container, {len(page.view_ids)} widget views ({', '.join(page.classes) or '-'}), "
        f"{page.widget_images} Output-widget images; {len(page.requests)} requests, "
        f"{sum(r.size for r in page.requests) / 1e3:.0f} kB ({vendored / 1e3:.0f} kB from _vendor), "
        f"{f['elapsed_ms']:.0f} ms"
    )


@pytest.mark.parametrize("docname", PAGES)
def test_page_loads_offline_without_errors(docname, rendered):
    page = rendered(docname)
    print(summary(page))
    if page.console_errors:
        print("  console errors:", *page.console_errors[:10], sep="\n    ")
    assert not page.problems, summary(page) + "\n  " + "\n  ".join(page.problems)


@pytest.mark.parametrize("docname", PAGES)
def test_math_is_typeset(docname, rendered):
    page = rendered(docname)
    facts, problems = page.facts, []
    untypeset = [e["text"] for e in facts["math"] if not e["typeset"]]
    if untypeset:
        problems.append(f"{len(untypeset)} math elements not typeset, e.g. {untypeset[:3]}")
    if facts["mjx_errors"]:
        problems.append(f"MathJax errors: {facts['mjx_errors'][:5]}")
    if source_has_math(docname) and facts["mjx_containers"] == 0:
        problems.append("the source has math, the page shows none (mjx-container)")
    if facts["mjx_tab_stops"]:  # a keyboard reader would Tab through every formula
        problems.append(f"{facts['mjx_tab_stops']} formulas in the Tab order (_config.yml: inTabOrder)")
    if facts["math"] and "mathjax" not in facts:
        problems.append("math on the page but MathJax did not load")
    raw_tex = sorted(set(RAW_TEX.findall(facts["text"])))
    if raw_tex:
        problems.append(f"raw TeX left in the text: {raw_tex[:5]}")
    assert not problems, summary(page) + "\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("docname", PAGES)
def test_widgets_render(docname, rendered):
    page = rendered(docname)
    facts, problems = page.facts, []
    if page.view_ids and page.state is None:
        problems.append("widget views on the page but no widget state stored")
    for mid, w in zip(facts["view_ids"], facts["widgets"]):
        if not w["rendered"]:
            problems.append(f"widget {mid} not rendered")
        elif "Error displaying widget" in w["text"] or "Error creating widget" in w["text"]:
            problems.append(f"widget {mid}: {w['text']!r}")
        elif w["height"] <= 0 or w["width"] <= 0:
            problems.append(f"widget {mid} rendered with zero size")
    missing = sorted(set(page.classes) - set(facts["widget_classes"]))
    if missing:
        problems.append(f"widget kinds not drawn: {missing}")
    if facts["output_images"] < page.widget_images:
        problems.append(
            f"{page.widget_images} images stored in Output widgets, {facts['output_images']} drawn"
        )
    assert not problems, summary(page) + "\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("docname", PAGES)
def test_screenshots_light_and_dark(docname, rendered):
    page = rendered(docname)
    for mode, path in page.shots.items():
        print(f"{docname} {mode}: {path} ({page.themes[mode]})")
        assert path.is_file() and path.stat().st_size > 10_000, f"{path}: no screenshot"
    light, dark = page.themes["light"], page.themes["dark"]
    assert dark["theme"] == "dark" and dark["luminance"] < 0.3, f"dark mode did not switch: {dark}"
    assert light["theme"] != "dark" and light["luminance"] > 0.7, f"light mode is not light: {light}"


# Per table: each body cell's text, and the right edge of that text on the screen.
TABLE_CELLS_JS = r"""
() => [...document.querySelectorAll('.bd-article table')].map((t) =>
  [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.children].map((td) => {
    // the text's own boxes (a range over the cell would include its paragraph's box)
    const walker = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
    let right = -Infinity;
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim()) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      for (const r of range.getClientRects()) right = Math.max(right, r.right);
    }
    return {text: td.textContent.trim(), right};
  })))
"""
PLAIN_NUMBER = re.compile(r"[+−]?\d[\d.,]*(e[+−-]\d+)?%?")


@pytest.mark.parametrize("docname", [p for p in PAGES if p.startswith("chapters/")])
def test_columns_of_numbers_line_up(docname, book_server, browser):
    context, page, _ = new_page(browser)
    try:
        page.goto(f"{book_server}/{docname}.html", wait_until="load")
        tables = page.evaluate(TABLE_CELLS_JS)
    finally:
        context.close()
    hyphens = [c["text"] for t in tables for row in t for c in row if re.match(r"-\.?\d", c["text"])]
    assert not hyphens, f"{docname}: numbers with a hyphen for a minus sign: {hyphens}"
    ragged, columns = [], 0
    for i, rows in enumerate(tables):
        for j in range(1, min(map(len, rows), default=0)):
            cells = [row[j] for row in rows if row[j]["text"] != "–"]
            if len(cells) < 2 or not all(PLAIN_NUMBER.fullmatch(c["text"]) for c in cells):
                continue
            columns += 1
            edges = [c["right"] for c in cells]
            if max(edges) - min(edges) > 1:
                ragged.append(f"table {i + 1}, column {j + 1}: {[c['text'] for c in cells]}")
    print(f"{docname}: {columns} columns of plain numbers in {len(tables)} tables")
    assert not ragged, f"{docname}: columns of numbers whose right edges do not line up:\n  " + "\n  ".join(ragged)
