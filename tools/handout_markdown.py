"""A chapter's Markdown as it must read in a handout: one notebook, alone, in JupyterLab.

In the book, Sphinx resolves what a chapter's Markdown points at; a handout
(`student_edition.py assign`) travels without the book, and jupyterlab-myst renders it
alone. Left as written, a handout showed "Exercise 1" where the book says "Exercise 6.1",
a second number beside every tagged equation, a citation as its bibliography key behind
a warning sign, and links to other chapters' files that are not in the handout's folder.
`Handout.markdown` rewrites one cell's Markdown for the handout:

* ``[](02_maml.ipynb)`` (the book prints the chapter's title) becomes
  ``chapter 2, *MAML: learning an initialisation that adapts*`` ("Chapter" where a
  sentence starts; after the word "chapter", only the number and title; the appendix:
  its title, *Appendix: performance*);
* a link with text of its own, ``[Reptile](05_reptile.ipynb)``, keeps it and gains the
  chapter's number, "Reptile (chapter 5)" ("[chapter 08](...)": "chapter 8, *title*"; a
  link to the appendix keeps its text alone);
* ``{cite}`a,b``` becomes ``[Finn et al., 2017, Hospedales et al., 2021]`` and
  ``{cite:t}`a``` becomes ``Finn et al. [2017]``, as the book prints them: the labels of
  `_ext/citation_labels.py`, several works in the order of the reference list;
* "listed in [](../references.md)" becomes "listed below", followed by the works the
  chapter cites, formatted as in the book's reference list (which replaces the book's
  own short list of them, "this chapter cites, in order: ...").

With ``links=True`` (the lab edition, `lab_edition.py`, where every chapter sits beside
the others) a link to a chapter stays a link, named as above:
``[chapter 2, *MAML: ...*](02_maml.ipynb)``.

Same-page references (``{ref}`ex-hessian-reverse-mode```, ``{prf:ref}`alg-maml```) are
kept: jupyterlab-myst resolves them within the notebook ("Exercise 3.2",
"Algorithm 2.1"); `Handout.check_complete` checks that each one's target is in the
handout (not in a solution, which Otter removes). Anything else that needs the book (a
role, a relative link or a file directive this module does not know) raises, so that a
new kind of reference is handled here rather than shipped broken.

`Handout.front_matter` numbers exercises as the book does (``6.%s``; the appendix's are
1, 2, ... in the book too) and turns off jupyterlab-myst's own equation numbers (the
chapters tag their equations, ``\\tag{6.1}``). Checked in JupyterLab with jupyterlab-myst
2.7: front matter in a handout's first Markdown cell is read (a raw cell's is not); in
the chapters themselves it cannot go, because Jupyter Book then fails on the cell.
"""
from __future__ import annotations

import functools
import re
import sys
from pathlib import Path

import nbformat
import yaml
from book_toc import numbered_chapters

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))
from citation_labels import BookStyle, author_year_label  # the book's own labels

CITE = re.compile(r"\{cite(?::(t))?\}`([^`]+)`")
CHAPTER_LINK = re.compile(r"\[\]\(((?:\.\./chapters/)?([0-9A-Z][0-9]_\w+)\.ipynb)\)")
#: A link to a chapter with text of its own: ``[Reptile](05_reptile.ipynb)``.
NAMED_CHAPTER_LINK = re.compile(r"\[([^\]\n]+)\]\(((?:\.\./chapters/)?([0-9A-Z][0-9]_\w+)\.ipynb)\)")
REFERENCES_LINK = "listed in [](../references.md)"
#: The book's list of a chapter's works after it (tests/test_citation_labels.py); a handout
#: prints those works itself, formatted as the book's reference list, so the list goes.
CHAPTER_WORKS = re.compile(r"; this chapter cites, in order:\n\n((?:- \{cite:t\}`[^`]+`: \*[^\n]*\*(?:\n|$))+)")
SAME_PAGE_REF = re.compile(r"\{(?:ref|prf:ref)\}`(?:[^`<>]*<)?([^`<>]+?)>?`")  # `label` or `text <label>`
#: Where the handout's own targets are defined: a directive's ``:label:``, a ``(name)=`` line.
TARGET = re.compile(r"^:label:\s*(\S+)|^\((\S+)\)=\s*$", re.MULTILINE)
#: What a handout cannot resolve: any role but the citations and same-page references
#: handled here, a relative link (to a file of the book), a directive that reads a file.
UNRESOLVED = re.compile(r"\{(?!cite(?::t)?\}|ref\}|prf:ref\})[a-z:-]+\}`"
                        r"|\]\((?!https?://|mailto:|#)[^)]*\)"
                        r"|\{(?:figure|image|include|literalinclude)\}")
#: pybtex's Markdown escapes every punctuation mark (``Model\-agnostic``, ``\(ICML\)``);
#: these are plain text in MyST inside a list item's line, so the handout's source reads clean.
NEEDLESS_ESCAPE = re.compile(r"\\([-.():,])")


@functools.cache
def _title(notebook: Path) -> str:
    """A chapter's title: its first level-1 heading."""
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "markdown":
            found = re.search(r"^# (.+)$", cell.source, re.MULTILINE)
            if found:
                return found.group(1).strip()
    raise ValueError(f"{notebook.name} has no '# title' heading")


@functools.cache
def _bibliography(path: Path):
    from pybtex.database import parse_file

    return parse_file(str(path))


class Handout:
    """The rewriting for one chapter's handout (``name``: ``"06_imaml"``)."""

    def __init__(self, name: str, chapters: Path = ROOT / "chapters", bib: Path = ROOT / "references.bib",
                 *, links: bool = False):
        self.name = name
        self.links = links  # keep a link to another chapter, with its name as text (all chapters side by side)
        self.numbers = numbered_chapters()
        if name not in self.numbers:
            raise ValueError(f"{name!r} is not a chapter of _toc.yml ({', '.join(self.numbers)})")
        self.chapters = chapters
        self.bib_path = bib
        self.bibliography = _bibliography(bib)
        self.cited: list[str] = []  # keys, in order of first citation
        self.listed: list[str] | None = None  # the keys of the reference list, once written
        self.refs: set[str] = set()  # labels of the same-page references ({ref}, {prf:ref})
        self.targets: set[str] = set()  # labels the handout defines (not a solution's)

    def front_matter(self) -> str:
        """The YAML block that opens the handout's first Markdown cell."""
        number = self.numbers[self.name]
        numbering = {"equation": False} if number is None else {"enumerator": f"{number}.%s", "equation": False}
        return "---\n" + yaml.safe_dump({"numbering": numbering}, sort_keys=False) + "---\n"

    def _chapter(self, match: re.Match) -> str:
        name = match.group(2)
        if name not in self.numbers:
            raise ValueError(f"{self.name}: a link to {name}.ipynb, which is not a chapter of _toc.yml")
        title, number = f"*{_title(self.chapters / f'{name}.ipynb')}*", self.numbers[name]
        before = match.string[:match.start()]
        if number is None:  # the appendix: its title says so
            text = title
        elif re.search(r"chapter\s*$", before, re.IGNORECASE):  # "the Hessian chapter [](03_hessian.ipynb)"
            text = f"{number}, {title}"
        else:
            starts_sentence = not before.strip() or re.search(r"[.!?](\*\*)?\s*$", before)
            text = f"{'Chapter' if starts_sentence else 'chapter'} {number}, {title}"
        return f"[{text}]({name}.ipynb)" if self.links else text

    def _named_chapter(self, match: re.Match) -> str:
        """``[Reptile](05_reptile.ipynb)``: "Reptile (chapter 5)"; "[chapter 08](...)": "chapter 8,
        *title*"; a link to the appendix keeps its text alone (it names the appendix)."""
        text, name = match.group(1), match.group(3)
        if name not in self.numbers:
            raise ValueError(f"{self.name}: a link to {name}.ipynb, which is not a chapter of _toc.yml")
        if self.links:
            return match.group(0)
        number = self.numbers[name]
        if number is None:
            return text
        if re.fullmatch(r"[Cc]hapter 0?\d+", text):
            return f"{text.split()[0]} {number}, *{_title(self.chapters / f'{name}.ipynb')}*"
        return f"{text} (chapter {number})"

    def _entries(self, keys: list[str], record: bool) -> list:
        missing = [key for key in keys if key not in self.bibliography.entries]
        if missing:
            raise KeyError(f"{self.name}: {{cite}} names {missing}, not in {self.bib_path.name}")
        if record:
            self.cited += [key for key in keys if key not in self.cited]
        # several works in one citation: in the reference list's order, as the book prints them
        return BookStyle().sort([self.bibliography.entries[key] for key in keys])

    def _citation(self, match: re.Match, record: bool) -> str:
        labels = [author_year_label(e) for e in self._entries([k.strip() for k in match.group(2).split(",")], record)]
        if match.group(1) != "t":
            return "[" + ", ".join(labels) + "]"
        textual = []  # Finn et al. [2017]; a work without a year: its authors alone
        for label in labels:
            names, _, year = label.rpartition(", ")
            textual.append(f"{names} [{year}]" if names else label)
        return ", ".join(textual)

    def reference_list(self) -> str:
        """The works cited so far, as the book's reference list formats them."""
        if not self.cited:
            raise ValueError(f"{self.name}: links the reference list but cites no work")
        entries = BookStyle().format_entries(self._entries(self.cited, record=False))
        return "\n".join(f"- [{entry.label}] " + NEEDLESS_ESCAPE.sub(r"\1", " ".join(entry.text.render_as("markdown").split()))
                         for entry in entries)

    def markdown(self, text: str, *, record: bool = True) -> str:
        """One cell's Markdown, rewritten for the handout (see the module's docstring).

        ``record=False`` for a solution (Otter removes it from the handout): its citations
        stay out of the reference list, its targets out of those the handout defines."""
        works = CHAPTER_WORKS.search(text)
        if works:  # (recorded: chapter 07 cites its works only there)
            self._entries(re.findall(r"`([^`]+)`", works.group(1)), record)
            text = CHAPTER_WORKS.sub(".", text).rstrip("\n")
        text = CITE.sub(lambda m: self._citation(m, record), text)
        if REFERENCES_LINK in text:
            text = text.replace(REFERENCES_LINK, "listed below") + "\n\n" + self.reference_list()
            self.listed = list(self.cited)
        left = UNRESOLVED.search(NAMED_CHAPTER_LINK.sub(" ", CHAPTER_LINK.sub(" ", text)))  # resolved below
        if left:
            raise ValueError(f"{self.name}: {left.group(0)!r} needs the book; teach tools/handout_markdown.py "
                             "how a handout should show it")
        self.refs |= set(SAME_PAGE_REF.findall(text))
        if record:
            self.targets |= {a or b for a, b in TARGET.findall(text)}
        return NAMED_CHAPTER_LINK.sub(self._named_chapter, CHAPTER_LINK.sub(self._chapter, text))

    def check_complete(self) -> None:
        """After the last cell: every work the handout cites is in its reference list, and
        every same-page reference has its target in the handout."""
        if self.cited and self.listed is None:
            raise ValueError(f"{self.name}: cites {len(self.cited)} works but has no '{REFERENCES_LINK}'")
        late = [key for key in self.cited if key not in (self.listed or [])]
        if late:
            raise ValueError(f"{self.name}: {late} cited after the reference list")
        dangling = sorted(self.refs - self.targets)
        if dangling:
            raise ValueError(f"{self.name}: references {dangling}, whose targets are not in the handout "
                             "(another chapter's, or in a solution)")
