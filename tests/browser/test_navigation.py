"""Finding one's way in the built book: the phone's contents drawer, and dropdowns named
for what they hold (keyboard and screen-reader users hear a control's name, not its look)."""

from __future__ import annotations

import json
import re

import pytest

from browsing import TYPESET_JS, new_page, toc_pages

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


# a reference in any form ("eq. (5.1)", "Eq. (5.1)", "(eq. 5.1)", "eqs. 2.2-2.4", "equation
# 5.1"), and its first number: written apart from the extension's pattern, and wider
EQUATION_REFERENCE = re.compile(r"(?i)\beq(?:s|uations?)?\.?\s*\(?\s*([0-9A-Z]+\.[0-9]+)")
# a number that continues a linked reference ("eqs. (5.5) and (5.6)", "eqs. 2.2-2.4"),
# left unlinked: each link is replaced by this marker before the text is searched
LINK_MARK = "\u27e6link\u27e7"
CONTINUED = re.compile(LINK_MARK + r"(?:,\s*|\s+and\s+|\s+to\s+|\s*[–-]\s*)\(?\s*([0-9A-Z]+\.[0-9]+)")
# a bare "(6.5)" with no "eq." before it: not linked, so the text must say "eq. (6.5)"
BARE_REFERENCE = re.compile(r"\(([0-9A-Z]+\.[0-9]+)\)")


def test_every_equation_reference_is_a_link_to_its_formula(book_server, browser):
    """ "eq. (5.1)" in running text is a link to the formula tagged (5.1), on its own page or
    another chapter's (`_ext/equation_links.py`): every link's target exists, is a display
    formula showing that number, and no reference in the text is left without its link, nor a
    bare "(6.5)" naming a formula's number without "eq." (which the extension leaves alone).
    Then a reader follows one across pages and lands on the formula."""
    context, page, guard = new_page(browser, width=1280, height=900)
    links, unlinked, bare, formulas = [], {}, {}, {}
    try:
        for docname in [p for p in toc_pages() if p.startswith("chapters/")] + ["api", "intro"]:
            page.goto(f"{book_server}/{docname}.html", wait_until="networkidle")  # (a goto aborts what loads)
            page.evaluate(TYPESET_JS)
            formulas.update({f"{book_server}/{docname}.html#{k}": v for k, v in page.evaluate("""() =>
                Object.fromEntries([...document.querySelectorAll('.math[id^="eq-"]')]
                    .map((e) => [e.id, e.textContent]))""").items()})
            links += [(docname, *link) for link in page.evaluate("""() =>
                [...document.querySelectorAll('article a.equation-link')].map((a) => [a.textContent, a.href])""")]
            # the running text with code, formulas, headings and other links taken out, and
            # each equation link a marker (a list's second number must be a link too)
            text = page.evaluate("""(mark) => {
                const article = document.querySelector('article').cloneNode(true);
                article.querySelectorAll('a.equation-link').forEach((a) => a.replaceWith(mark));
                article.querySelectorAll('a, pre, code, mjx-container, .math, h1, h2, h3, h4, .cell_output')
                    .forEach((e) => e.remove());
                return article.textContent; }""", LINK_MARK)
            unlinked[docname] = EQUATION_REFERENCE.findall(text) + CONTINUED.findall(text)
            bare[docname] = BARE_REFERENCE.findall(text)
            # typesetting fetched fonts (and the favicon may come late): let them finish, or the
            # next goto aborts them and the guard reports a failed request (CI on a busy machine)
            guard.settle(page)
        assert sum(len(v) for v in unlinked.values()) == 0, {k: v for k, v in unlinked.items() if v}
        numbers = {href.split("#eq-")[1].replace("-", ".") for href in formulas}  # "5.1", ...
        bare = {k: [n for n in v if n in numbers] for k, v in bare.items()}
        assert not any(bare.values()), {k: v for k, v in bare.items() if v}
        assert len(links) > 100, len(links)  # the book refers to its equations some 200 times
        targets = {}
        for docname, text, href in links:
            number = re.search(r"([0-9A-Z]+\.[0-9]+)\)?$", text)  # "eq. (5.1)", "(5.4)", "eq. 2.2", "2.4"
            assert number, (docname, text)
            assert href.endswith("#eq-" + number.group(1).replace(".", "-")), (docname, text, href)
            targets[href] = number.group(1)
        for href, number in sorted(targets.items()):
            assert href in formulas, f"{href}: no display formula with that id"
            assert f"({number})" in formulas[href], (href, formulas[href][:80])  # the number MathJax shows
        # a reader on chapter 10 follows "eq. (2.3)" to chapter 02 and sees the formula
        page.goto(f"{book_server}/chapters/10_wider_map.html", wait_until="networkidle")
        page.evaluate(TYPESET_JS)
        guard.settle(page)  # (the click's navigation would abort what still loads)
        page.locator("a.equation-link", has_text="(2.3)").first.click()
        page.wait_for_url(re.compile(r"02_maml\.html#eq-2-3$"))
        page.evaluate(TYPESET_JS)
        box = page.evaluate("() => document.getElementById('eq-2-3').getBoundingClientRect().toJSON()")
        assert 0 <= box["top"] < 900 and box["height"] > 0, box
        assert not guard.problems(), guard.problems()
    finally:
        context.close()
