"""Every static demo in the *built* chapters responds to its controls, offline.

For each chapter page of ``_build/html`` that holds demos (``div.mbd``), this loads the
page from the local server in headless Chromium, moves the first slider of every demo
(value + ``input`` event, as a reader's drag does) and checks that the demo's canvas
changed. The kernel-free figures must work in the book readers see, not only in a test page.
"""
from __future__ import annotations

import json

import pytest

from test_rendered_book import HTML, Tab, server, browser  # noqa: F401  (fixtures)

DEMO_PAGES = sorted(p.relative_to(HTML).as_posix() for p in HTML.glob("chapters/*.html")
                    if 'class="mbd ' in p.read_text(errors="ignore")) if HTML.is_dir() else []


def test_the_book_has_demos():
    if not HTML.is_dir():
        pytest.skip(f"{HTML} does not exist: build the book first (make book)")
    assert len(DEMO_PAGES) >= 5, DEMO_PAGES


@pytest.mark.parametrize("page", DEMO_PAGES)
def test_every_demo_on_the_page_responds(page, server, browser):  # noqa: F811
    tab = Tab(browser, f"{server}/{page}")
    evaluate = tab.evaluate
    roots = evaluate("[...document.querySelectorAll('div.mbd')].map((r) => r.id)")
    assert roots, f"{page}: no demo found"
    for root in roots:
        rid = json.dumps(root)
        before = evaluate(f"document.getElementById({rid}).querySelector('canvas').toDataURL()")
        evaluate(f"""(() => {{ const el = document.getElementById({rid}).querySelector('input[type=range]');
            el.value = (Number(el.min) + Number(el.max)) / 2 === Number(el.value) ? el.max : (Number(el.min) + Number(el.max)) / 2;
            el.dispatchEvent(new Event('input', {{bubbles: true}})); }})()""")
        after = evaluate(f"document.getElementById({rid}).querySelector('canvas').toDataURL()")
        assert after != before, f"{page}: moving the first slider of {root} did not change its figure"
    tab.close()
