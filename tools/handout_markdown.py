"""A chapter's Markdown as it must read in a handout: one notebook, alone, in JupyterLab.

In the book, Sphinx resolves what a chapter's Markdown points at; a handout
(`student_edition.py assign`) travels without the book, and jupyterlab-myst renders it
alone. Left as written, a handout showed "Exercise 1" where the book says "Exercise 6.1",
a second number beside every tagged equation, a citation as its bibliography key behind
a warning sign, and links to other chapters' files that are not in the handout's folder.
`Handout.markdown` rewrites one cell's Markdown for the handout:

* ``[](02_maml.ipynb)`` (the book prints the chapter's title) becomes
  ``*MAML: learning an initialisation that adapts* (chapter 2)`` (the appendix: its
  title, *Appendix: performance*);
* ``{cite}`a,b``` becomes ``[Finn et al., 2017, Hospedales et al., 2021]`` and
  ``{cite:t}`a``` becomes ``Finn et al. [2017]``, as the book prints them
  (`_ext/citation_labels.py` writes the labels for both);
* "listed in [](../references.md)" becomes "listed below", followed by the works the
  chapter cites, formatted as in the book's reference list.

`Handout.front_matter` numbers exercises as the book does (``6.%s``; the appendix's are
unnumbered in the book's sense, 1, 2, ...) and turns off jupyterlab-myst's own equation
numbers (the chapters tag their equations, ``\\tag{6.1}``). Checked in JupyterLab with
jupyterlab-myst 2.7: front matter in a handout's first Markdown cell is read (a raw cell's
is not); in the book's chapters themselves it cannot go, because Jupyter Book then fails.
Anything else that needs the book (a role or a link this module does not know) raises,
so that a new kind of reference is handled here rather than shipped broken.
"""
from __future__ import annotations

import re
import sys
from functools import cached_property
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))
from citation_labels import BookStyle, author_year_label

CITE = re.compile(r"\{cite(?::(t))?\}`([^`]+)`")
CHAPTER_LINK = re.compile(r"\[\]\(((?:\.\./chapters/)?([0-9A-Z][0-9]_\w+)\.ipynb)\)")
REFERENCES_LINK = "listed in [](../references.md)"
#: What a handout cannot resolve: any role but the citations and same-page references
#: rewritten or kept here, and any link to a file of the book.
UNRESOLVED = re.compile(r"\{(?!cite(?::t)?\}|ref\}|prf:ref\})[a-z:-]+\}`|\]\((?!https?://)[^)#][^)]*\.(?:ipynb|md)\b")


def _numbered_chapters(toc: Path = ROOT / "_toc.yml") -> dict[str, int | None]:
    """``{"02_maml": 2, ..., "A1_performance": None}``: each chapter's number in the book
    (Sphinx numbers the chapters of ``numbered`` parts 1, 2, ... across parts)."""
    numbers: dict[str, int | None] = {}
    count = 0
    for part in yaml.safe_load(toc.read_text())["parts"]:
        for entry in part["chapters"]:
            name = Path(entry["file"]).name
            if not entry["file"].startswith("chapters/"):
                continue
            if part.get("numbered"):
                count += 1
                numbers[name] = count
            else:
                numbers[name] = None
    return numbers


def _title(notebook: Path) -> str:
    """A chapter's title: its first level-1 heading."""
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "markdown":
            found = re.search(r"^# (.+)$", cell.source, re.MULTILINE)
            if found:
                return found.group(1).strip()
    raise ValueError(f"{notebook.name} has no '# title' heading")


class Handout:
    """The rewriting for one chapter's handout (``name``: ``"06_imaml"``)."""

    def __init__(self, name: str, chapters: Path = ROOT / "chapters", bib: Path = ROOT / "references.bib"):
        self.name = name
        self.numbers = _numbered_chapters()
        if name not in self.numbers:
            raise ValueError(f"{name!r} is not a chapter of _toc.yml ({', '.join(self.numbers)})")
        self.chapters = chapters
        self.bib_path = bib
        self.cited: list[str] = []  # keys, in order of first citation
        self.listed: list[str] | None = None  # the keys of the reference list, once written

    @cached_property
    def bibliography(self):
        from pybtex.database import parse_file

        return parse_file(str(self.bib_path))

    def front_matter(self) -> str:
        """The YAML block that opens the handout's first Markdown cell."""
        number = self.numbers[self.name]
        numbering = {"equation": False} if number is None else {"enumerator": f"{number}.%s", "equation": False}
        return "---\n" + yaml.safe_dump({"numbering": numbering}, sort_keys=False) + "---\n"

    def chapter_name(self, name: str) -> str:
        number = self.numbers.get(name, "missing")
        if number == "missing":
            raise ValueError(f"{self.name}: a link to {name}.ipynb, which is not a chapter of _toc.yml")
        title = f"*{_title(self.chapters / f'{name}.ipynb')}*"  # the appendix's says it is one
        return title if number is None else f"{title} (chapter {number})"

    def _label(self, key: str) -> str:
        if key not in self.bibliography.entries:
            raise KeyError(f"{self.name}: {{cite}} names {key!r}, which is not in {self.bib_path.name}")
        if key not in self.cited:
            self.cited.append(key)
        return author_year_label(self.bibliography.entries[key])

    def _citation(self, match: re.Match) -> str:
        labels = [self._label(key.strip()) for key in match.group(2).split(",")]
        if match.group(1) == "t":  # textual: Finn et al. [2017]
            return ", ".join(f"{names} [{year}]" for names, year in (label.rsplit(", ", 1) for label in labels))
        return "[" + ", ".join(labels) + "]"

    def reference_list(self) -> str:
        """The works cited so far, as the book's reference list formats them."""
        entries = BookStyle().format_entries([self.bibliography.entries[key] for key in self.cited])
        return "\n".join(
            f"- [{author_year_label(self.bibliography.entries[entry.key])}] "
            + " ".join(entry.text.render_as("markdown").split())
            for entry in entries
        )

    def check_complete(self) -> None:
        """Every work the handout cites is in its reference list (called after the last cell)."""
        if self.cited and self.listed is None:
            raise ValueError(f"{self.name}: cites {len(self.cited)} works but has no '{REFERENCES_LINK}'")
        late = [key for key in self.cited if key not in (self.listed or [])]
        if late:
            raise ValueError(f"{self.name}: {late} cited after the reference list")

    def markdown(self, text: str) -> str:
        """One cell's Markdown, rewritten for the handout (see the module's docstring)."""
        text = CITE.sub(self._citation, text)
        text = CHAPTER_LINK.sub(lambda m: self.chapter_name(m.group(2)), text)
        if REFERENCES_LINK in text:
            text = text.replace(REFERENCES_LINK, "listed below") + "\n\n" + self.reference_list()
            self.listed = list(self.cited)
        left = UNRESOLVED.search(text)
        if left:
            raise ValueError(f"{self.name}: {left.group(0)!r} needs the book; teach tools/handout_markdown.py "
                             "how a handout should show it")
        return text
