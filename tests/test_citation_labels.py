"""The reference list's author-year labels (_ext/citation_labels.py), checked on the
book's own bibliography and on made-up entries, without building the book (the
built list is checked in tests/browser/test_citations.py)."""
import sys
from pathlib import Path

from pybtex.database import Entry, Person, parse_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))
from citation_labels import AuthorYearLabelStyle, author_year_label  # noqa: E402


def entry(*authors: str, year: str = "2018") -> Entry:
    return Entry("article", fields={"title": "t", "year": year}, persons={"author": [Person(a) for a in authors]})


def test_one_two_and_more_authors():
    assert author_year_label(entry("Lilian Weng")) == "Weng, 2018"
    assert author_year_label(entry("Jorge Nocedal", "Stephen Wright", year="2006")) == "Nocedal and Wright, 2006"
    assert author_year_label(entry("Chelsea Finn", "Pieter Abbeel", "Sergey Levine", year="2017")) == "Finn et al., 2017"


def test_latex_accents_and_particles_are_plain_text():
    assert author_year_label(entry('Thomas M{\\"u}ller', "A B", "C D", year="2021")) == "Müller et al., 2021"
    assert author_year_label(entry("Jan N. van Rijn")) == "van Rijn, 2018"


def test_equal_labels_get_letters():
    entries = [entry("Alex Nichol", "John Schulman"), entry("Alex Nichol", "John Schulman"), entry("A Other")]
    assert list(AuthorYearLabelStyle().format_labels(entries)) == [
        "Nichol and Schulman, 2018a", "Nichol and Schulman, 2018b", "Other, 2018"]


def test_the_books_bibliography_needs_no_letter_suffix():
    # the text's author-year citations never show a 2018a/2018b suffix, so two works
    # whose labels would need one could not be told apart in the text: none may
    entries = list(parse_file(ROOT / "references.bib").entries.values())
    raw = [author_year_label(e) for e in entries]
    assert len(set(raw)) == len(raw), sorted(r for r in raw if raw.count(r) > 1)
    labels = list(AuthorYearLabelStyle().format_labels(entries))
    assert labels == raw
    assert "Müller et al., 2021" in labels and "Lake et al., 2015" in labels and "Lake et al., 2019" in labels


def test_each_chapter_lists_the_works_it_cites():
    # a chapter's "References" section names every work cited above it, in order of first
    # citation, each with its title as in references.bib (a reader's list for the chapter)
    import json
    import re

    bib = parse_file(ROOT / "references.bib").entries
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        text = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                         if c["cell_type"] == "markdown")
        body, _, listed = text.partition("## References\n")
        assert listed, f"{path.name} has no References section"
        listed = listed.split("\n## ")[0]
        cited = list(dict.fromkeys(k.strip() for m in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", body)
                                   for k in m.split(",")))
        items = re.findall(r"^- \{cite:t\}`([^`]+)`: \*(.+)\*$", listed, flags=re.M)
        # chapter 07 cites nothing above its list: its list names the works it compares
        assert items and (path.name == "07_comparison.ipynb" or [k for k, _ in items] == cited), path.name
        for key, title in items:
            assert title == bib[key].fields["title"].replace("{", "").replace("}", ""), (path.name, key)
