"""The built book's citations and sidebar, read as a reader meets them.

* Every citation in the text ("Finn et al., 2017", or "Finn et al. [2017]") links to an
  entry of the reference list labelled the same way, ``[Finn et al., 2017]``
  (``_ext/citation_labels.py``; pybtex's default labels read ``[FAL17]``); a click on
  one, in Chromium, lands on that entry.
* The sidebar names the book once: its title at the top, linking home, and no second
  entry with the same words for the home page (``home_page_in_navbar: false``).

Skips when ``_build/html`` is missing (``make book``).
"""

from __future__ import annotations

import html
import re

import pytest

from browsing import HTML, new_page, toc_pages

CITATION = re.compile(r'<span class="bibtex-citation"[^>]*>(.*?)</span>', re.S)
LINK = re.compile(r'<a class="reference internal" href="([^"#]*)#([^"]+)"[^>]*>(.*?)</a>', re.S)
ENTRY = re.compile(
    r'<div class="citation" id="([^"]+)" role="doc-biblioentry">\s*'
    r'<span class="label">(.*?)</span>\s*<p>(.*?)</p>',
    re.S,
)
TAG = re.compile(r"<[^>]+>")


def text(fragment: str) -> str:
    return " ".join(html.unescape(TAG.sub("", fragment)).split())


def words(s: str) -> list[str]:
    return re.findall(r"\w+", s)


def built(name: str) -> str:
    path = HTML / name
    if not HTML.is_dir():
        pytest.skip(f"{HTML} does not exist: build the book first (make book)")
    assert path.is_file(), f"{path} missing: is the build stale or incomplete?"
    return path.read_text()


def reference_list() -> dict[str, str]:
    """``{anchor id: label}`` of references.html's entries, brackets dropped."""
    entries = {anchor: text(label).strip("[]") for anchor, label, _ in ENTRY.findall(built("references.html"))}
    assert entries, "references.html lists no entries"
    return entries


def test_reference_labels_read_like_citations():
    labels = list(reference_list().values())
    assert "Finn et al., 2017" in labels and "Nocedal and Wright, 2006" in labels, labels
    # a surname of one or more words ("van Rijn"), "and" a second or "et al.", the year,
    # and no 2018a/2018b suffix, which the text's citations would not show
    form = r"[^\W\d][\w'-]*(?: [\w'-]+)*(?: and [\w' -]+| et al\.)?, \d{4}"
    odd = [label for label in labels if not re.fullmatch(form, label)]
    assert not odd, f"labels not of the form 'Surname et al., 2017': {odd}"


def test_every_citation_links_to_the_entry_it_names():
    labels, checked, problems = reference_list(), 0, []
    for docname in toc_pages():
        for span in CITATION.findall(built(f"{docname}.html")):
            said = text(span)
            for target, anchor, _ in LINK.findall(span):
                checked += 1
                if not target.endswith("references.html") or anchor not in labels:
                    problems.append(f"{docname}: {said!r} links to {target}#{anchor}, not an entry")
                    continue
                label = words(labels[anchor])
                # the surname and the year (textual citations bracket only the year)
                if label[0] not in words(said) or label[-1] not in words(said):
                    problems.append(f"{docname}: {said!r} links to [{labels[anchor]}]")
    assert checked > 20, f"only {checked} citation links found: has the citation markup changed?"
    assert not problems, "\n".join(problems)


def test_a_clicked_citation_lands_on_its_entry(book_server, browser):
    # a short window and a late entry (Rajeswaran et al. comes after most of the list):
    # the entry is out of sight until the link scrolls the page to it
    context, page, guard = new_page(browser, height=400)
    try:
        page.goto(f"{book_server}/intro.html")
        link = page.locator("span.bibtex-citation a", has_text="Rajeswaran").first
        cited = " ".join(link.inner_text().split())
        link.click()
        page.wait_for_url("**/references.html#*")
        target = page.locator(":target")
        label = " ".join(target.locator("span.label").inner_text().split())
        in_view = target.evaluate("e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight; }")
        scrolled = page.evaluate("window.scrollY")
    finally:
        context.close()
    assert label == f"[{cited}]", (cited, label)
    assert scrolled > 0 and in_view, f"the page did not scroll to the cited entry (scrollY {scrolled})"
    assert not guard.problems(), guard.problems()


def test_the_sidebar_names_the_book_once():
    page = built("intro.html")
    title = text(re.search(r"<title>(.*?)</title>", page, re.S).group(1))
    nav = re.search(r'<nav class="bd-links bd-docs-nav"[^>]*>.*?</nav>', page, re.S)
    assert nav, "no sidebar navigation in intro.html"
    entries = [text(a) for a in re.findall(r"<a [^>]*>(.*?)</a>", nav.group(0), re.S)]
    assert len(entries) > 10, entries
    book_title = text(re.search(r'<p class="title logo__title">(.*?)</p>', page, re.S).group(1))
    assert book_title and book_title in title, (book_title, title)
    assert book_title not in entries, f"the sidebar lists the home page again as {book_title!r}"
