"""Finding one's way in the built book: the phone's contents drawer, and dropdowns named
for what they hold (keyboard and screen-reader users hear a control's name, not its look)."""

from __future__ import annotations

import json
import re

import pytest

from browsing import new_page, toc_pages

PHONE_WIDTH = 390


def test_the_phone_contents_drawer_closes_after_a_jump(book_server, browser):
    """On a phone the page's contents open in a drawer over three quarters of the screen; a
    tap on an entry jumped to it and left the drawer open. It closes, and the section
    jumped to holds the focus (not the drawer's button at the top)."""
    context, page, guard = new_page(browser, width=PHONE_WIDTH, height=844, touch=True)
    try:
        page.goto(f"{book_server}/chapters/07_comparison.html", wait_until="load")
        page.locator("button.secondary-toggle").first.click()
        drawer = page.locator("dialog#pst-secondary-sidebar-modal")
        assert drawer.evaluate("(d) => d.open")
        entry = drawer.locator("a.nav-link[href^='#']").nth(2)
        target = entry.get_attribute("href")[1:]
        entry.click()
        page.wait_for_function("() => !document.querySelector('dialog#pst-secondary-sidebar-modal').open")
        assert page.evaluate("() => location.hash.slice(1)") == target
        page.wait_for_function(f"() => document.activeElement && document.activeElement.id === {json.dumps(target)}")
        top = page.evaluate(f"() => document.getElementById({json.dumps(target)}).getBoundingClientRect().top")
        assert 0 <= top < 200, top  # the section is where the reader jumped
        assert not guard.problems(), guard.problems()
    finally:
        context.close()


@pytest.mark.parametrize("docname", [p for p in toc_pages() if p.startswith("chapters/")])
def test_dropdowns_are_named_for_what_they_hold(docname, book_server, browser):
    """Every solution's button was named "Toggle hidden content" (sphinx-togglebutton), so a
    screen reader's list of buttons read the same words for every exercise; a folded
    output's visible "Show code cell output" was overridden by the same aria-label."""
    context, page, guard = new_page(browser, width=1280, height=900)
    try:
        page.goto(f"{book_server}/{docname}.html", wait_until="load")
        names = page.evaluate("""() => [...document.querySelectorAll('.solution button.toggle-button')]
            .map((b) => b.getAttribute('aria-label'))""")
        solutions = page.evaluate("() => document.querySelectorAll('.solution').length")
        generic = page.evaluate("""() => [...document.querySelectorAll('[aria-label="Toggle hidden content"]')]
            .map((e) => e.tagName + ': ' + e.textContent.trim().slice(0, 40))""")
        assert not guard.problems(), guard.problems()
    finally:
        context.close()
    chapter = docname.split("/")[1].split("_")[0]  # "04": exercises 4.1, 4.2, ...; the appendix: 1, 2, ...
    number = rf"{int(chapter)}\.\d+" if chapter.isdigit() else r"\d+"
    pattern = re.compile(rf"Show or hide: Solution to Exercise {number}")
    assert len(names) == solutions and all(pattern.fullmatch(n) for n in names), names
    assert len(set(names)) == len(names), names  # one name per solution
    assert not generic, generic
