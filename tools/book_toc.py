"""The book's table of contents (``_toc.yml``), read in one place.

Used by the student edition (`student_edition.py`, which copies every page that is not
a chapter), the handouts and the lab edition (`handout_markdown.py`, `lab_edition.py`,
`_ext/lab_downloads.py`: the chapters and their numbers), the browser tests
(`tests/browser/browsing.py`, which visit every page) and the student edition's tests.

>>> toc_entries()[:2]
['intro', 'chapters/01_few_shot']
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_entries(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """Every page the table of contents names (its ``root``, then each ``file``), in book
    order, once each, as written there (``chapters/02_maml``, or with a suffix if one is
    given)."""
    def files(node) -> list[str]:
        if isinstance(node, dict):
            own = [node[key] for key in ("root", "file") if key in node]
            return own + [f for value in node.values() for f in files(value)]
        if isinstance(node, list):
            return [f for item in node for f in files(item)]
        return []

    return list(dict.fromkeys(files(yaml.safe_load(toc.read_text()))))


def page_file(entry: str, root: Path = ROOT) -> Path | None:
    """The source file of a page the table of contents names, under the book's ``root``:
    the entry itself if it has a suffix, else ``.md`` then ``.ipynb`` (Sphinx's order);
    None when there is none."""
    candidates = [root / entry] if Path(entry).suffix else [root / f"{entry}.md", root / f"{entry}.ipynb"]
    return next((path for path in candidates if path.is_file()), None)


def docname(entry: str) -> str:
    """A page's name without its suffix, as Sphinx names it (``chapters/02_maml``)."""
    return re.sub(r"\.(ipynb|md|rst)$", "", entry)


def chapter_numbers(toc: Path = ROOT / "_toc.yml") -> dict[str, int | None]:
    """Each page's number in the book, by docname: ``{"chapters/02_maml": 2, ...,
    "chapters/A1_performance": None}``. Jupyter Book numbers the pages of ``numbered``
    parts 1, 2, ... continuously across those parts; a page of another part has none.

    >>> chapter_numbers()["chapters/06_imaml"]
    6
    """
    numbers: dict[str, int | None] = {}
    count = 0
    for part in yaml.safe_load(toc.read_text())["parts"]:
        for entry in part["chapters"]:
            if part.get("numbered"):
                count += 1
            numbers[docname(entry["file"])] = count if part.get("numbered") else None
    return numbers


def numbered_chapters(toc: Path = ROOT / "_toc.yml") -> dict[str, int | None]:
    """The chapters' numbers by notebook name, in book order: `chapter_numbers` for the
    pages under ``chapters/``.

    >>> list(numbered_chapters().items())[:2]
    [('01_few_shot', 1), ('02_maml', 2)]
    """
    return {Path(page).name: n for page, n in chapter_numbers(toc).items() if page.startswith("chapters/")}
