"""Every static demo in the *built* chapters responds to its controls, offline.

For each chapter page of ``_build/html`` that holds demos (``div.mbd``), this loads the
page from the local server in headless Chromium (Playwright), moves the first slider of
every demo (value + ``input`` event, as a reader's drag does; a demo without sliders,
the Omniglot game, gets a click on its last button, "next round") and checks that the demo's
canvas changed, with no request off this machine and no JavaScript exception. The
kernel-free figures must work in the book readers see, not only in a test page.
"""
from __future__ import annotations

import pytest

from browsing import HTML, new_page

DEMO_PAGES = sorted(p.relative_to(HTML).as_posix() for p in HTML.glob("chapters/*.html")
                    if 'class="mbd ' in p.read_text(errors="ignore")) if HTML.is_dir() else []

CANVAS = "(id) => document.getElementById(id).querySelector('canvas').toDataURL()"
MOVE_FIRST_SLIDER = """(id) => { const el = document.getElementById(id).querySelector('input[type=range]');
    if (!el) { [...document.getElementById(id).querySelectorAll('button[data-action]')].pop().click(); return; }
    const mid = (Number(el.min) + Number(el.max)) / 2;
    el.value = mid === Number(el.value) ? el.max : mid;
    el.dispatchEvent(new Event('input', {bubbles: true})); }"""


def test_the_book_has_demos():
    if not HTML.is_dir():
        pytest.skip(f"{HTML} does not exist: build the book first (make book)")
    assert len(DEMO_PAGES) >= 5, DEMO_PAGES


@pytest.mark.parametrize("page_name", DEMO_PAGES)
def test_every_demo_on_the_page_responds(page_name, book_server, browser):
    context, page, guard = new_page(browser)
    try:
        page.goto(f"{book_server}/{page_name}")
        roots = page.evaluate("[...document.querySelectorAll('div.mbd')].map((r) => r.id)")
        assert roots, f"{page_name}: no demo found"
        for root in roots:
            before = page.evaluate(CANVAS, root)
            page.evaluate(MOVE_FIRST_SLIDER, root)
            after = page.evaluate(CANVAS, root)
            assert after != before, f"{page_name}: moving the first slider of {root} did not change its figure"
    finally:
        context.close()
    assert not guard.problems(), "\n".join(guard.problems())
