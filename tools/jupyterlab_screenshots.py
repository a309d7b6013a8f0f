"""Chapter 04 as a student sees it in JupyterLab with jupyterlab-myst: screenshots.

Starts JupyterLab (no token, loopback only) on a COPY of the chapter (JupyterLab
saves the notebooks it opens), opens it with windowing off so that every cell is
rendered, reports markdown cells that still show raw MyST and whether the notebook is
marked modified once its kernel has started (JupyterLab rewrites the notebook's
``kernelspec`` and ``language_info`` metadata with the kernel's own: the chapters store
what Python 3.11.7's ipykernel reports, so another Python version marks them modified),
and writes screenshots of the top and of the exercises to ``_build/jupyterlab/``.

    .venv/bin/python tools/jupyterlab_screenshots.py [CHAPTER]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from jupyterlab_server import jupyterlab
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "jupyterlab"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
RAW_MYST = re.compile(
    r"\{(doc|cite|exercise|solution-start|solution-end|prf:\w+)\}|^:label:", re.MULTILINE
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", nargs="?", type=Path, default=ROOT / "chapters" / "04_fomaml.ipynb",
                        help="a notebook, e.g. lab/03_hessian.ipynb (default: chapters/04_fomaml.ipynb)")
    chapter = parser.parse_args(argv).chapter
    if not chapter.is_file() or chapter.suffix != ".ipynb":
        parser.error(f"argument chapter: {str(chapter)!r} is not a notebook file (.ipynb)")
    work = Path(tempfile.mkdtemp(prefix="mamlbook-lab-"))
    notebooks = work / "notebooks"
    notebooks.mkdir()
    shutil.copy(chapter, notebooks / chapter.name)
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        with jupyterlab(notebooks, work) as base, sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/{chapter.name}", timeout=180_000)
            page.wait_for_function(
                "document.querySelectorAll('.jp-MarkdownCell').length > 5",
                timeout=300_000,
            )
            page.wait_for_timeout(15_000)  # MathJax and MyST rendering
            page.screenshot(path=OUT / f"{chapter.stem}.top.png")
            texts = page.evaluate(
                "() => [...document.querySelectorAll('.jp-MarkdownCell')].map(e => e.innerText)"
            )
            raw = [t[:80] for t in texts if RAW_MYST.search(t)]
            math = page.evaluate(
                "() => document.querySelectorAll('mjx-container, .katex').length"
            )
            print(
                f"{chapter.name}: {len(texts)} markdown cells, {math} formulas typeset, "
                f"{len(raw)} showing raw MyST {raw[:3]}"
            )
            page.evaluate("""() => [...document.querySelectorAll('.jp-MarkdownCell')]
                .find(e => /Exercise\\s[0-9]/.test(e.innerText)).scrollIntoView()""")
            page.mouse.move(700, 500)
            page.mouse.wheel(0, 600)
            page.wait_for_timeout(3000)
            page.screenshot(path=OUT / f"{chapter.stem}.exercises.png")
            print(f"screenshots in {OUT}")
            # the kernel has started and reported its metadata: a kernel, idle, on the server
            page.wait_for_function(
                """async () => (await (await fetch('/api/kernels')).json())
                               .some(k => k.execution_state === 'idle')""",
                timeout=120_000, polling=1000,
            )
            page.wait_for_timeout(3000)  # the notebook applies the kernel's info
            modified = page.evaluate("() => document.querySelectorAll('.jp-mod-dirty').length")
            print(f"marked modified after opening: {'yes' if modified else 'no'}")
            return 1 if raw or modified else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
