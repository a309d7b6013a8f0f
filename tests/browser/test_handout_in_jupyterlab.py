"""A handout as a student opens it: chapter 06's, in JupyterLab with jupyterlab-myst.

`tools/student_edition.py assign` writes the handout (Otter Assign); JupyterLab serves it
on 127.0.0.1 (no token, its own settings and runtime folders); the page, in Chromium,
must show what the book shows (tools/handout_markdown.py): exercises numbered 6.1..6.4,
one number per tagged equation, citations as "[Rajeswaran et al., 2019]" and not as a
bibliography key behind a warning sign, chapters named by title and number rather than
as links to files that are not in the handout's folder, the works cited listed at the
end, and no MyST left raw.
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

CHAPTER = "06_imaml"
RAW_MYST = re.compile(r"\{(doc|cite|ref|exercise|solution-start|solution-end|prf:\w+)\}|^:label:|\]\(\S+\.ipynb\)", re.MULTILINE)


@pytest.fixture(scope="module")
def handout_lab(tmp_path_factory):
    """The URL of chapter 06's handout, served by a JupyterLab started for this module."""
    work = tmp_path_factory.mktemp("handout-lab")
    (chapter,) = se.load_chapters([CHAPTER[:2]])
    se.write_assignments(work / "assignments", [chapter], se.load_grading(), handouts=work / "handouts")
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
             "--ServerApp.token=", "--ServerApp.password=", f"--notebook-dir={work / 'handouts' / CHAPTER}"],
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
            yield f"http://127.0.0.1:{port}/lab/tree/{CHAPTER}.ipynb"
        finally:
            lab.terminate()
            lab.wait(30)


def test_the_handout_reads_as_the_book(handout_lab, browser):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        page.goto(handout_lab, timeout=120_000)
        probe = """() => ({cells: document.querySelectorAll('.jp-MarkdownCell').length,
                           math: document.querySelectorAll('.jp-MarkdownCell mjx-container, .jp-MarkdownCell .katex').length,
                           listed: [...document.querySelectorAll('.jp-MarkdownCell')]
                                   .some(e => e.innerText.includes('listed below'))})"""
        # MyST renders each cell, then the math is typeset: wait for the last cell and the formulas
        deadline, seen = time.monotonic() + 120, None
        while time.monotonic() < deadline:
            seen = page.evaluate(probe)
            if seen["cells"] > 20 and seen["listed"] and seen["math"] > 50:
                break
            page.wait_for_timeout(1000)
        else:
            browsing.SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(browsing.SHOTS / "handout-06-jupyterlab.png"))
            pytest.fail(f"the handout did not render within 120 s: {seen}")
        page.wait_for_timeout(2000)
        texts = page.evaluate("() => [...document.querySelectorAll('.jp-MarkdownCell')].map(e => e.innerText)")
        browsing.SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(browsing.SHOTS / "handout-06-jupyterlab.png"))
    finally:
        page.close()
    text = "\n".join(texts)
    assert re.findall(r"Exercise\s+([\d.]+)", text) == ["6.1", "6.2", "6.3", "6.4"]
    # eq. (6.1) shows its tag once per rendering of the formula, and no automatic "(1)" beside it
    assert "(6.1)" in text and not re.search(r"^\(\d+\)$", text, re.MULTILINE)
    assert "[Rajeswaran et al., 2019]" in text and "rajeswaran2019imaml" not in text
    assert "MAML: learning an initialisation that adapts (chapter 2)" in text
    references = next(t for t in texts if "listed below" in t)
    assert "Aravind Rajeswaran, Chelsea Finn, Sham M. Kakade, and Sergey Levine" in references
    assert [t[:80] for t in texts if RAW_MYST.search(t)] == []
