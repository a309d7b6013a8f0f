"""Fixtures of the browser tests (helpers are in ``browsing.py``).

The browser is pytest-playwright's ``browser`` fixture, launched from the system
Chromium (``CHROMIUM``, default ``/usr/bin/chromium``): no browser download, and
``playwright install`` is never needed. A test fails (not skips) when Chromium is
missing; a test of the built book skips when ``_build/html`` is missing.
"""

from __future__ import annotations

import pytest

import browsing


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    problem = browsing.chromium_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    return {
        **browser_type_launch_args,
        "executable_path": browsing.CHROMIUM,
        "args": browsing.CHROMIUM_ARGS,
        "timeout": browsing.PAGE_TIMEOUT * 1000,
    }


@pytest.fixture(scope="session")
def book_server():
    """Base URL of ``_build/html`` served on 127.0.0.1; skips when the book is not built."""
    if not browsing.HTML.is_dir():
        pytest.skip(f"{browsing.HTML} does not exist: build the book first (make book)")
    with browsing.serve(browsing.HTML) as url:
        yield url


@pytest.fixture(scope="session")
def rendered(book_server, browser):
    """``rendered(docname)``: the page loaded once (``browsing.load_book_page``), cached.

    Each page is loaded, probed and screenshotted once for all the tests that look at it.
    """
    cache: dict[str, browsing.RenderedPage] = {}

    def get(docname: str) -> browsing.RenderedPage:
        if docname not in cache:
            html_file = browsing.HTML / f"{docname}.html"
            assert html_file.exists(), f"{html_file} missing: is the build stale or incomplete?"
            cache[docname] = browsing.load_book_page(browser, book_server, docname)
        return cache[docname]

    return get
