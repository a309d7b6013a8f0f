"""Handouts as a student opens them: chapters 06 and 03, in JupyterLab with jupyterlab-myst.

`tools/student_edition.py assign` writes each handout (Otter Assign); JupyterLab serves
it on 127.0.0.1 (no token, its own settings and runtime folders); the page, in Chromium,
must show what the book shows (tools/handout_markdown.py): exercises numbered 6.1, 6.2,
..., one number per tagged equation, citations as "[Rajeswaran et al., 2019]" and not
as a bibliography key behind a warning sign, other chapters named by number and title
rather than as links to files that are not in the handout's folder, a same-page
reference resolved ("Exercise 3.2 below", chapter 03), the works cited listed at the
end, and no MyST left raw. The expected strings are derived from the chapter and the
bibliography, not copied.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import browsing
import pytest

sys.path.insert(0, str(browsing.REPO / "tools"))
import student_edition as se
from handout_markdown import Handout

CHAPTERS = ("06_imaml", "03_hessian")  # the round-trip chapter; one with a same-page {ref}
#: The Markdown cells of the notebook in view (a restored background tab's are in the page too).
CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-MarkdownCell"
RAW_MYST = re.compile(r"\{(doc|cite|ref|exercise|solution-start|solution-end|prf:\w+)\}|^:label:|\]\(\S+\.ipynb\)",
                      re.MULTILINE)


@pytest.fixture(scope="module")
def handout_lab(tmp_path_factory):
    """``url(name)``: a handout of `CHAPTERS`, served by one JupyterLab started for this module."""
    work = tmp_path_factory.mktemp("handout-lab")
    chapters = se.load_chapters([name[:2] for name in CHAPTERS])
    se.write_assignments(work / "assignments", chapters, se.load_grading(), handouts=work / "handouts")
    settings = work / "config" / "lab" / "user-settings" / "@jupyterlab"
    (settings / "notebook-extension").mkdir(parents=True)
    # every cell rendered at once (by default JupyterLab renders only those in view)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(work / "config"), JUPYTER_RUNTIME_DIR=str(work / "runtime"))
    with open(work / "lab.log", "w") as log:
        lab = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
             "--ServerApp.token=", "--ServerApp.password=", f"--notebook-dir={work / 'handouts'}"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    if lab.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"JupyterLab did not start: {(work / 'lab.log').read_text()[-2000:]}")
                    time.sleep(0.5)
            # ?reset: a fresh workspace, not the last page's tabs restored beside this one
            yield lambda name: f"http://127.0.0.1:{port}/lab/tree/{name}/{name}.ipynb?reset"
        finally:
            lab.terminate()
            lab.wait(30)


def _expected(name: str) -> dict:
    """What the handout of chapter ``name`` must show, from its source and the bibliography."""
    (chapter,) = se.load_chapters([name[:2]])
    number = Handout(name).numbers[name]
    master = se.otter_master(chapter, se.load_grading())
    markdown = "\n".join(c.source for c in master.cells if c.cell_type == "markdown")
    source = "\n".join(part[1] for part in chapter.parts if part[0] == "markdown")
    key = re.search(r"\{cite\}`([^`,]+)`", source).group(1)
    label = re.search(r"\[([^\]]*\d{4})\]", Handout(name).markdown(f"{{cite}}`{key}`")).group(1)
    refs = re.findall(r"\{ref\}`([^`]+)`", source)
    labels = [ex.label for ex in chapter.exercises]
    return {"exercises": [f"{number}.{i}" for i in range(1, len(labels) + 1)],
            "tag": re.search(r"\\tag\{([^}]+)\}", source).group(1), "key": key, "label": label,
            "chapter": re.search(r"[Cc]hapter \d+, \*([^*]+)\*", markdown).group(0).replace("*", ""),
            "refs": [f"Exercise {number}.{labels.index(r) + 1}" for r in refs if r in labels]}


@pytest.mark.parametrize("name", CHAPTERS)
def test_the_handout_reads_as_the_book(handout_lab, browser, name):
    expected = _expected(name)
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        page.goto(handout_lab(name), timeout=120_000)
        probe = """(cells) => ({cells: document.querySelectorAll(cells).length,
                                 math: [...document.querySelectorAll(cells)]
                                       .reduce((n, e) => n + e.querySelectorAll('.katex').length, 0),
                                 listed: [...document.querySelectorAll(cells)]
                                         .some(e => e.innerText.includes('listed below'))})"""
        # MyST renders each cell, KaTeX its formulas: wait until the last cell (the list)
        # is rendered and the formulas stop changing in number
        deadline, seen, last = time.monotonic() + 120, None, None
        while time.monotonic() < deadline:
            seen = page.evaluate(probe, CELLS)
            if seen["listed"] and seen["math"] and seen == last:
                break
            last = seen
            page.wait_for_timeout(1000)
        else:
            browsing.SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(browsing.SHOTS / f"handout-{name}-jupyterlab.png"))
            pytest.fail(f"the handout did not finish rendering within 120 s: {seen}")
        texts = page.evaluate("(cells) => [...document.querySelectorAll(cells)].map(e => e.innerText)", CELLS)
        browsing.SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(browsing.SHOTS / f"handout-{name}-jupyterlab.png"))
    finally:
        page.close()
    texts = [t.replace("\xa0", " ") for t in texts]  # "Exercise\xa03.2": a reference's no-break space
    text = "\n".join(texts)
    assert [t.split("\n")[0] for t in texts if re.match(r"Exercise\s", t)] == [
        f"Exercise {n}" for n in expected["exercises"]]
    # a tagged equation shows its tag on a line of its own, and no automatic "(1)" beside it
    assert re.search(rf"^\({re.escape(expected['tag'])}\)$", text, re.MULTILINE)
    assert not re.search(r"^\(\d+\)$", text, re.MULTILINE)
    assert f"[{expected['label']}]" in text and expected["key"] not in text
    assert expected["chapter"] in text
    for ref in expected["refs"]:  # resolved by jupyterlab-myst within the notebook
        assert any(ref in t for t in texts if not t.startswith("Exercise")), ref
    references = next(t for t in texts if "listed below" in t)
    assert f"[{expected['label']}]" in references
    assert [t[:80] for t in texts if RAW_MYST.search(t)] == []
