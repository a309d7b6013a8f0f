"""The reference list's labels in the text's own form: ``[Finn et al., 2017]``.

The chapters cite author-year (``bibtex_reference_style: author_year``): a citation
reads "Finn et al., 2017" and links to the reference list. sphinxcontrib-bibtex labels
that list with pybtex's *alpha* labels (``[FAL17]``), so the link landed on a label the
reader had not seen. This registers the pybtex formatting style ``book`` (pybtex's
``unsrt`` entries, sorted by author, year and title, as alpha sorts them) whose labels
are written the way the citations are: the first author's surname, "and" the second's
for two authors, "et al." for more, then the year. Selected in ``_config.yml`` with
``bibtex_default_style: book``. (A label-free bullet list would read the same, but
sphinxcontrib-bibtex resolves citations only into its citation lists.)
"""
from __future__ import annotations

from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels.alpha import LabelStyle as AlphaLabelStyle
from pybtex.style.sorting.author_year_title import SortingStyle


def _surname(person) -> str:
    """A person's last names as plain text (``M{\\"u}ller`` -> ``Müller``)."""
    return Text.from_latex(" ".join(person.prelast_names + person.last_names)).render_as("text")


def author_year_label(entry) -> str:
    """``"Finn et al., 2017"``, ``"Nocedal and Wright, 2006"``, ``"Weng, 2018"``."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    if not people:
        names = entry.fields.get("key", entry.key)
    elif len(people) == 1:
        names = _surname(people[0])
    elif len(people) == 2:
        names = f"{_surname(people[0])} and {_surname(people[1])}"
    else:
        names = f"{_surname(people[0])} et al."
    year = entry.fields.get("year")
    return f"{names}, {year}" if year else names


class AuthorYearLabelStyle(AlphaLabelStyle):
    """Author-year labels; pybtex's alpha style (whose label this replaces) gives two
    works with the same label a letter each, 2018a and 2018b."""

    def format_label(self, entry):
        return author_year_label(entry)


class BookStyle(UnsrtStyle):
    default_label_style = AuthorYearLabelStyle
    default_sorting_style = SortingStyle


def setup(app):
    register_plugin("pybtex.style.formatting", "book", BookStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
