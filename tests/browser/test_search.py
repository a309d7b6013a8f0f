"""The book's search page, as a reader uses it.

Sphinx's results quote each page's text around the words searched for, and there a
formula is its TeX: "3.3. \\(k\\) inner steps: a product of Jacobians", or a display,
"\\[ ... \\tag{2.1} \\]". The book loads
MathJax on the search page and typesets each summary as it appears
(``_assets/search_math.js``, added by ``_ext/book_pages.py``). A search whose summaries
quote formulas must show them typeset, also where a search term is inside one ("lambda"
in ``\\(\\alpha\\lambda\\)``, which Sphinx marks), with no TeX delimiter left as text (a
formula cut by the summary's 240 characters is dropped, "..." in its place), offline
and without errors.

Skips when ``_build/html`` is missing (``make book``).
"""

from __future__ import annotations

import html
import re
import sys
import time
import urllib.parse

import pytest
from browsing import HTML, REPO, new_page

#: Searches whose summaries quote formulas: inline ones (chapters 03, 06, 07), "lambda"
#: inside some of them; displays, "test" inside some, cut by the summary's ends in others.
QUERIES = ("inner steps product Jacobians lambda", "test")
#: TeX left as text in a summary: a formula's delimiter, a tag, an environment.
RAW_FORMULA = re.compile(r"\\[()\[\]]|\\tag\{|\\begin\{")
PROBE = """() => {
  const results = document.getElementById('search-results');
  const summaries = [...document.querySelectorAll('#search-results p.context')];
  return {finished: /Search finished/.test(results ? results.innerText : ''),
          summaries: summaries.map(p => p.innerText),
          typeset: summaries.filter(p => p.querySelector('mjx-container')).length};
}"""


@pytest.mark.parametrize("query", QUERIES)
def test_search_summaries_show_their_formulas_typeset(book_server, browser, query):
    context, page, guard = new_page(browser)
    try:
        page.goto(f"{book_server}/search.html?q={query.replace(' ', '+')}")
        deadline, facts = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            facts = page.evaluate(PROBE)
            raw = [s for s in facts["summaries"] if RAW_FORMULA.search(s)]
            if facts["finished"] and facts["typeset"] and not raw:
                break
            page.wait_for_timeout(500)
        page.wait_for_timeout(1000)  # summaries still arriving would be typeset too
        facts = page.evaluate(PROBE)
    finally:
        context.close()
    assert facts["finished"], "the search did not finish within 60 s"
    assert len(facts["summaries"]) >= 3, facts["summaries"]
    assert facts["typeset"] >= 2, facts
    assert [s[:120] for s in facts["summaries"] if RAW_FORMULA.search(s)] == []
    assert not guard.problems(), guard.problems()



#: A method's name searched for, and the page (and section) that explains it: first.
LEADS_TO = {
    "iMAML": "chapters/06_imaml.html#implicit-maml",
    "MAML++": "chapters/10_wider_map.html#maml-how-to-train-your-maml",
    "Reptile": "chapters/05_reptile.html#reptile",
    "ANIL": "chapters/10_wider_map.html#anil-adapt-the-head-only",
    "Omniglot": "chapters/08_classification.html#few-shot-classification-on-real-omniglot",
}
RESULT_LINKS = """() => [...document.querySelectorAll('#search-results ul.search > li > a')]
    .map(a => a.getAttribute('href'))"""


@pytest.mark.parametrize("query", LEADS_TO)
def test_a_search_for_a_method_leads_to_its_chapter_first(book_server, browser, query):
    """Sphinx ranks an object's name (mamlbook.algorithms.imaml) above a page's words, so
    "iMAML" listed API entries before the chapter; the concepts' index entries
    (`_ext/concept_index.py`) put the chapter's section first."""
    context, page, guard = new_page(browser)
    try:
        page.goto(f"{book_server}/search.html?q={urllib.parse.quote_plus(query)}")
        page.wait_for_function(
            "() => /Search finished/.test(document.getElementById('search-results').innerText)", timeout=60_000)
        links = page.evaluate(RESULT_LINKS)
        assert not guard.problems(), guard.problems()
    finally:
        context.close()
    assert links and links[0] == LEADS_TO[query], links[:5]


def test_the_general_index_lists_the_concepts_linked_to_their_sections():
    """Every concept of `_ext/concept_index.py` is a main entry of genindex.html, linked to
    a section its chapter has; the intro links to the index."""
    if not HTML.is_dir():
        pytest.skip(f"{HTML} does not exist: build the book first (make book)")
    sys.path.insert(0, str(REPO / "_ext"))
    from concept_index import CONCEPTS

    entries = {html.unescape(text): href for href, text in re.findall(
        r'<a href="([^"]+)"><strong>([^<]+)</strong></a>', (HTML / "genindex.html").read_text())}
    listed = [(docname, c) for docname, sections in CONCEPTS.items() for cs in sections.values() for c in cs]
    assert len(listed) > 40
    for docname, concept in listed:
        assert concept in entries, f"{concept!r} is not in genindex.html"
        page, _, section = entries[concept].partition("#")
        assert page == f"{docname}.html" and section, (concept, entries[concept])
        assert f'id="{section}"' in (HTML / page).read_text(), (concept, entries[concept])
    assert 'href="genindex.html"' in (HTML / "intro.html").read_text(), "intro: no link to the index"
