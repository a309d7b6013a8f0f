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

import re
import time

import pytest
from browsing import new_page

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
