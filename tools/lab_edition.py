"""The chapters as JupyterLab should show them: ``make lab`` writes them to ``lab/``.

Opened from ``chapters/``, a chapter reads differently in JupyterLab than in the book:
jupyterlab-myst does not read ``references.bib`` (a citation shows its key behind a
warning sign), numbers every display equation beside the book's own tag (``(4.1)`` and
``(1)``), and numbers exercises 1, 2, ... where the book says 4.1, 4.2. A front-matter
cell would fix the numbering, but Jupyter Book fails on one in a chapter. So the lab
edition is written from the chapters, rewritten as the handouts are
(`handout_markdown.Handout`): citations as the book prints them with the works cited
listed at the end, the book's numbering in the first Markdown cell's front matter, and
links to other chapters kept (all chapters sit side by side) and named by number and
title. Code cells are the chapters' own, unchanged.

A student's copy is theirs: a notebook changed since this tool wrote it (edited, or
run and saved) is kept, and said so; ``--replace CHAPTER`` overwrites it.
``lab/.written.json`` holds a fingerprint of what was written, to tell the two apart:
the notebook without the kernel's own metadata (``kernelspec``, ``language_info``),
which JupyterLab rewrites, and saves, when the kernel's Python is another patch release
than the one the chapters were stored with. A notebook of ``lab/`` that is no longer a
chapter of the book is left there, and said so.

    .venv/bin/python tools/lab_edition.py [--out lab] [--replace] [CHAPTER ...]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import nbformat
from book_toc import numbered_chapters
from handout_markdown import Handout

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
RECORD = ".written.json"


def lab_notebook(name: str, chapters: Path = CHAPTERS) -> nbformat.NotebookNode:
    """Chapter ``name`` (``"04_fomaml"``) as the lab edition holds it."""
    notebook = nbformat.read(chapters / f"{name}.ipynb", as_version=4)
    handout = Handout(name, chapters, links=True)
    markdown = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    if not markdown:
        raise ValueError(f"{name} has no Markdown cell for the front matter")
    for cell in markdown:
        cell.source = handout.markdown(cell.source)
    handout.check_complete()
    markdown[0].source = handout.front_matter() + markdown[0].source
    return notebook


def fingerprint(text: str) -> str:
    """SHA-256 of a notebook's JSON without the kernel's metadata (what opening it with
    another kernel changes, not its content)."""
    notebook = nbformat.reads(text, as_version=4)
    for key in ("kernelspec", "language_info"):
        notebook.metadata.pop(key, None)
    return hashlib.sha256(nbformat.writes(notebook).encode()).hexdigest()


def write(out: Path, names: list[str] | None = None, *, replace: bool = False) -> dict[str, str]:
    """Write the lab edition of ``names`` (default: every chapter) to ``out``; ``{name:
    what happened}``: ``"written"``, ``"up to date"``, ``"kept"`` (changed since it was
    written; ``replace`` overwrites it), ``"replaced"``, and, for a notebook written
    here before whose chapter is no longer in the book, ``"not a chapter"``."""
    known = list(numbered_chapters())
    names = known if names is None else names
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"not chapters of _toc.yml: {unknown} (chapters: {', '.join(known)})")
    texts = {name: nbformat.writes(lab_notebook(name)) for name in names}  # all, before writing any
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / RECORD
    record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else {}
    done = {name: "not a chapter" for name in record if name not in known and (out / f"{name}.ipynb").is_file()}
    for name, text in texts.items():
        path = out / f"{name}.ipynb"
        new = fingerprint(text)
        old = fingerprint(path.read_text(encoding="utf-8")) if path.is_file() else None
        if old is None or (old != new and record.get(name) == old):  # none, or an older edition as written
            done[name] = "written"
        elif old == new:
            done[name] = "up to date"
        else:
            done[name] = "replaced" if replace else "kept"
        if done[name] in ("written", "replaced"):
            path.write_text(text, encoding="utf-8")
        if done[name] != "kept":
            record[name] = new
            # after each notebook: an interrupted run leaves a record of what it wrote
            record_path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return done


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", metavar="CHAPTER", help="e.g. 04_fomaml (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "lab", help="where to write (default: lab/)")
    parser.add_argument("--replace", action="store_true",
                        help="overwrite the notebooks named (or all) even if changed since they were written "
                             "(your edits and outputs are lost)")
    args = parser.parse_args(argv)
    try:
        done = write(args.out, args.chapters or None, replace=args.replace)
    except ValueError as err:  # a name that is not a chapter: one line, exit 2
        parser.error(f"argument CHAPTER: {err}")
    for name, what in done.items():
        if what == "kept":
            print(f"{args.out / name}.ipynb: kept, changed since it was written (your edits or outputs); "
                  f"for the chapter as it is now, delete it or run: {os.path.relpath(sys.executable)} "
                  f"{os.path.relpath(__file__)} --replace {name}")
        elif what == "not a chapter":
            print(f"{args.out / name}.ipynb: kept, no longer a chapter of the book")
    counts = {what: sum(1 for w in done.values() if w == what) for what in dict.fromkeys(done.values())}
    print(f"lab edition in {args.out}: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
