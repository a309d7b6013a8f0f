"""The notebook a reader downloads from a chapter's page reads as the book in JupyterLab.

The download button of each chapter page serves ``_sources/chapters/<name>.ipynb``,
which Sphinx copies from the chapter as written for Jupyter Book: opened in JupyterLab
(jupyterlab-myst), its citations showed their bibliography keys behind a warning sign
and its equations a second number beside the book's. After the build, each of those
files is replaced by the chapter's lab edition (`tools/lab_edition.py`, what ``make
lab`` writes): the same cells, its Markdown as the book reads it (citations as the
book prints them with the works cited at the end, the book's numbering of equations
and exercises, other chapters named by number and title). The student edition's build
runs this too, on its own chapters (without solutions).
"""
from __future__ import annotations

import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "tools"  # _ext/ is linked, not copied, into the student edition


def replace_downloads(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    sys.path.insert(0, str(TOOLS))
    import nbformat
    from book_toc import numbered_chapters
    from lab_edition import lab_notebook

    sources = Path(app.outdir) / "_sources" / "chapters"
    for name in numbered_chapters():
        download = sources / f"{name}.ipynb"
        if not download.is_file():
            raise FileNotFoundError(f"{download}: the download of chapter {name} is missing")
        download.write_text(nbformat.writes(lab_notebook(name, Path(app.srcdir) / "chapters")))


def setup(app):
    app.connect("build-finished", replace_downloads)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
