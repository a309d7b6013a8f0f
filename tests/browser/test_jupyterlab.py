"""What a student opens in JupyterLab (with jupyterlab-myst) must read as the book.

* **Handouts** (chapters 06 and 03): `tools/student_edition.py assign` writes each one
  (Otter Assign); the page must show exercises numbered 6.1, 6.2, ..., one number per
  tagged equation, citations as "[Rajeswaran et al., 2019]" and not as a bibliography
  key behind a warning sign, other chapters named by number and title rather than as
  links to files that are not in the handout's folder, a same-page reference resolved
  ("Exercise 3.2 below", chapter 03), the works cited listed at the end, and no MyST
  left raw.
* **The lab edition** (`tools/lab_edition.py`, ``make lab``; chapter 03): the same, with
  the solutions folded under the exercises, and a link to another chapter named as the
  book names it that opens that chapter's notebook in JupyterLab. It is also what each
  chapter page of the built book offers for download (`_ext/lab_downloads.py`). Chapter
  05's, run in JupyterLab's kernel, runs without an error, and its live demo answers a
  slider with the package's numbers.
* **Chapter 08's live Omniglot game** (`omniglot_game.live()`) plays in JupyterLab: a
  pick reveals the answer and MAML's choice and probability, as the package computes
  them, and each way count keeps its own score across rounds and switches.

JupyterLab serves the notebooks on 127.0.0.1 (`browsing.jupyterlab`). The expected
strings are derived from the chapter, the bibliography and the package, not copied.
"""
from __future__ import annotations

import re
import sys
import time

import browsing
import nbformat
import pytest

sys.path.insert(0, str(browsing.REPO / "tools"))
import lab_edition
import student_edition as se
from book_toc import numbered_chapters
from handout_markdown import Handout, _title

CHAPTERS = ("06_imaml", "03_hessian")  # the round-trip chapter; one with a same-page {ref}
LAB_CHAPTER = "03_hessian"  # links to chapters 2 and 4, cites, tags equations, has exercises
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
    with browsing.jupyterlab(work / "handouts", work) as base:
        # ?reset: a fresh workspace, not the last page's tabs restored beside this one
        yield lambda name: f"{base}/lab/tree/{name}/{name}.ipynb?reset"


@pytest.fixture(scope="module")
def lab_edition_lab(tmp_path_factory):
    """The base URL of JupyterLab serving the lab edition of every chapter."""
    work = tmp_path_factory.mktemp("lab-edition")
    lab_edition.write(work / "lab")
    with browsing.jupyterlab(work / "lab", work) as base:
        yield base


def _rendered_texts(page, url: str, shot: str) -> list[str]:
    """The innerText of each Markdown cell of the notebook at ``url``, once MyST has
    rendered them all (the works-cited list, in the last cells, is there) and KaTeX's
    formulas stop changing in number; a screenshot in `browsing.SHOTS` either way."""
    page.goto(url, timeout=120_000)
    probe = """(cells) => ({cells: document.querySelectorAll(cells).length,
                             math: [...document.querySelectorAll(cells)]
                                   .reduce((n, e) => n + e.querySelectorAll('.katex').length, 0),
                             listed: [...document.querySelectorAll(cells)]
                                     .some(e => e.innerText.includes('listed below'))})"""
    deadline, seen, last, done = time.monotonic() + 120, None, None, False
    while not done and time.monotonic() < deadline:
        seen = page.evaluate(probe, CELLS)
        done = seen["listed"] and seen["math"] and seen == last
        last = seen
        if not done:
            page.wait_for_timeout(1000)
    browsing.SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(browsing.SHOTS / f"{shot}-jupyterlab.png"))
    if not done:
        pytest.fail(f"{url} did not finish rendering within 120 s: {seen}")
    texts = page.evaluate("(cells) => [...document.querySelectorAll(cells)].map(e => e.innerText)", CELLS)
    return [t.replace("\xa0", " ") for t in texts]  # "Exercise\xa03.2": a reference's no-break space


def _assert_reads_as_the_book(texts: list[str], tag: str, key: str, label: str) -> None:
    """One number per tagged equation, the citation as the book prints it, its work in
    the list at the end, no MyST left raw."""
    text = "\n".join(texts)
    # a tagged equation shows its tag on a line of its own, and no automatic "(1)" beside it
    assert re.search(rf"^\({re.escape(tag)}\)$", text, re.MULTILINE)
    assert not re.search(r"^\(\d+\)$", text, re.MULTILINE)
    assert f"[{label}]" in text and key not in text
    references = next(t for t in texts if "listed below" in t)
    assert f"[{label}]" in references
    assert [t[:80] for t in texts if RAW_MYST.search(t)] == []


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
        texts = _rendered_texts(page, handout_lab(name), f"handout-{name}")
    finally:
        page.close()
    assert [t.split("\n")[0] for t in texts if re.match(r"Exercise\s", t)] == [
        f"Exercise {n}" for n in expected["exercises"]]
    assert expected["chapter"] in "\n".join(texts)
    for ref in expected["refs"]:  # resolved by jupyterlab-myst within the notebook
        assert any(ref in t for t in texts if not t.startswith("Exercise")), ref
    _assert_reads_as_the_book(texts, expected["tag"], expected["key"], expected["label"])


def test_the_lab_edition_reads_as_the_book(lab_edition_lab, browser):
    name = LAB_CHAPTER
    number = Handout(name).numbers[name]
    chapter = nbformat.read(lab_edition.CHAPTERS / f"{name}.ipynb", as_version=4)
    source = "\n".join(c.source for c in chapter.cells if c.cell_type == "markdown")
    key = re.search(r"\{cite\}`([^`,]+)`", source).group(1)
    label = re.search(r"\[([^\]]*\d{4})\]", Handout(name).markdown(f"{{cite}}`{key}`")).group(1)
    linked = re.search(r"\[\]\((\d\d_\w+)\.ipynb\)", source).group(1)  # the first chapter it links to
    title = _title(lab_edition.CHAPTERS / f"{linked}.ipynb")
    # the first solution's first line of prose (after its directive's fence, not code), as shown
    solution = source.split("```{solution-start}", 1)[1].split("```\n", 1)[1]
    solution = re.sub(r"```.*?```", "", solution, flags=re.DOTALL)
    solution_line = re.sub(r"[`*]", "", next(line for line in solution.split("\n") if line.strip())).strip()[:40]
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        texts = _rendered_texts(page, f"{lab_edition_lab}/lab/tree/{name}.ipynb?reset", f"lab-{name}")
        _assert_reads_as_the_book(texts, re.search(r"\\tag\{([^}]+)\}", source).group(1), key, label)
        assert not any("numbering" in t or "enumerator" in t for t in texts)  # the front matter, read and hidden
        exercises = re.findall(r"^Exercise (\S+)$", "\n".join(texts), re.MULTILINE)
        assert exercises == [f"{number}.{i}" for i in range(1, source.count("```{exercise}") + 1)]
        assert len(re.findall(r"^Solution to Exercise \S+$", "\n".join(texts), re.MULTILINE)) == len(exercises)
        # each solution folded under its exercise: the first one's text shows once unfolded
        assert solution_line not in "\n".join(texts)
        page.get_by_text(f"Solution to Exercise {number}.1", exact=True).click()
        page.locator(CELLS, has_text=solution_line).wait_for(timeout=10_000)
        # the link names the chapter as the book does, and opens its notebook in JupyterLab
        link = page.locator(f"{CELLS} a[href*='{linked}.ipynb']").first
        assert re.fullmatch(rf"[Cc]hapter {Handout(name).numbers[linked]}, {re.escape(title)}", link.inner_text())
        link.click()
        page.locator(".lm-TabBar-tab", has_text=f"{linked}.ipynb").wait_for(timeout=30_000)
    finally:
        page.close()


#: Waits for the notebook in view to have a kernel, idle (``window.jupyterapp``: the
#: server exposes the app, `jupyterlab_server.jupyterlab`).
KERNEL_IDLE = """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle'; }"""
#: Starts Run All without waiting on its promise (it settles only when every cell has run).
RUN_ALL = "() => { void window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
#: ... then: the kernel idle, and every code cell run, or one failed (Run All stops there).
RUN_DONE = """() => { const w = window.jupyterapp.shell.currentWidget;
  const cells = w.context.model.toJSON().cells.filter(c => c.cell_type === 'code');
  return w.sessionContext.session.kernel.status === 'idle'
         && (cells.every(c => c.execution_count !== null)
             || cells.some(c => c.outputs.some(o => o.output_type === 'error'))); }"""


def _run_all(page, timeout_s: float) -> None:
    """Run every cell of the notebook in view; fails naming the first error, if any."""
    page.wait_for_function(KERNEL_IDLE, timeout=120_000, polling=500)
    page.evaluate(RUN_ALL)
    page.wait_for_function(RUN_DONE, timeout=timeout_s * 1000, polling=1000)
    notebook = page.evaluate("() => window.jupyterapp.shell.currentWidget.context.model.toJSON()")
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert [f"{o['ename']}: {o['evalue']}" for c in code for o in c["outputs"] if o["output_type"] == "error"] == []
    assert all(c["execution_count"] is not None for c in code)


def test_a_chapter_runs_in_jupyterlab_and_its_live_demo_answers_a_slider(lab_edition_lab, browser):
    """Chapter 05's lab edition, run all in JupyterLab's own kernel: no cell fails, and
    the live demo (`reptile_interpolation.live()`, ipywidgets) shows its five sliders and
    figure; one step of the ε slider brings back the package's own readout for it."""
    from playwright.sync_api import expect

    from mamlbook.demos import reptile_interpolation as demo

    name = "05_reptile"
    step = demo.live().controls["epsilon"].step  # one ArrowRight on the slider
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        page.goto(f"{lab_edition_lab}/lab/tree/{name}.ipynb?reset", timeout=120_000)
        _run_all(page, timeout_s=300)
        live = page.locator(".jp-OutputArea-output .jupyter-widgets", has_text="interpolation ε").first
        expect(live.locator(".widget-slider")).to_have_count(5)
        expect(live.locator("img")).to_have_count(1)
        readout = live.locator(".widget-html").first  # the demo's one HTML widget
        expect(readout).to_have_text(demo.draw(**demo.DEFAULTS)[1])
        live.locator(".widget-slider", has_text="interpolation ε").locator(".noUi-handle").focus()
        page.keyboard.press("ArrowRight")
        expect(readout).to_have_text(demo.draw(**{**demo.DEFAULTS, "epsilon": demo.DEFAULTS["epsilon"] + step})[1],
                                     timeout=30_000)
        browsing.SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(browsing.SHOTS / f"lab-{name}-run-jupyterlab.png"))
    finally:
        page.close()


def test_the_omniglot_game_plays_live_in_jupyterlab(tmp_path_factory, browser):
    """Chapter 08's live game (its `omniglot_game.live()` cell, after the chapter's
    import of it) in JupyterLab's kernel: five numbered buttons; a pick reveals the
    answer and MAML's choice with its probability, as the package computes them for that
    task, and scores the round; "next task" keeps the score; 20-way gives 20 buttons and
    a score of its own, and back at 5-way the first score is still there."""
    import torch
    from playwright.sync_api import expect

    from mamlbook.demos import omniglot_game as game

    chapter = nbformat.read(lab_edition.CHAPTERS / "08_classification.ipynb", as_version=4)
    code = [c.source for c in chapter.cells if c.cell_type == "code"]
    imports = next(line for source in code for line in source.splitlines() if "import omniglot_game" in line)
    work = tmp_path_factory.mktemp("game-lab")
    (work / "lab").mkdir()
    cells = [nbformat.v4.new_code_cell(imports),
             nbformat.v4.new_code_cell(next(source for source in code if "omniglot_game.live(" in source))]
    # the chapter's kernelspec: without one, JupyterLab asks which kernel to start
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=chapter.metadata), work / "lab" / "game.ipynb")
    # the first task the live game draws, and MAML's answer to it (omniglot_game.live)
    tasks, question = game.game_tasks(5, 1, seed=10_000 + 97)
    q = int(question[0])
    answer, probs = int(tasks.y_query[0, q]), game.maml_probabilities(tasks)[0, q]
    maml = int(torch.argmax(probs))
    pick = (answer + 1) % 5  # a wrong pick: the reader 0/1, MAML as it is
    score = f"5-way score: you 0/1, MAML {int(maml == answer)}/1"
    with browsing.jupyterlab(work / "lab", work) as base:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        try:
            page.goto(f"{base}/lab/tree/game.ipynb?reset", timeout=120_000)
            _run_all(page, timeout_s=120)
            buttons = page.locator(".jp-OutputArea-output .widget-button", has_text=re.compile(r"^\d+$"))
            readout = page.locator(".jp-OutputArea-output .widget-html")
            expect(buttons).to_have_text(["1", "2", "3", "4", "5"])
            expect(readout).to_have_text("5-way score: you 0/0, MAML 0/0; pick the character")
            buttons.nth(pick).click()
            expect(readout).to_have_text(
                f"you: {pick + 1} (wrong); answer {answer + 1}; MAML: {maml + 1} with probability "
                f"{float(probs.max()):.2f} ({'right' if maml == answer else 'wrong'}); {score}", timeout=30_000)
            page.get_by_role("button", name="next task").click()
            expect(readout).to_have_text(f"{score}; pick the character", timeout=30_000)
            page.get_by_role("button", name="20-way").click()
            expect(buttons).to_have_count(20, timeout=30_000)
            expect(readout).to_have_text("20-way score: you 0/0, MAML 0/0; pick the character")
            browsing.SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(browsing.SHOTS / "omniglot-game-live-jupyterlab.png"))
            page.get_by_role("button", name="5-way").click()
            expect(buttons).to_have_count(5, timeout=30_000)
            expect(readout).to_have_text(f"{score}; pick the character")
        finally:
            page.close()


def test_each_chapter_page_downloads_its_lab_edition():
    """The download button of a chapter page serves the lab edition (`_ext/lab_downloads.py`)."""
    if not browsing.HTML.is_dir():
        pytest.skip(f"{browsing.HTML} does not exist: build the book first (make book)")
    for name in numbered_chapters():
        page = (browsing.HTML / "chapters" / f"{name}.html").read_text()
        hrefs = set(re.findall(r'href="([^"]*_sources/[^"]*\.ipynb)"', page))
        assert hrefs == {f"../_sources/chapters/{name}.ipynb"}, (name, hrefs)
        download = (browsing.HTML / "chapters" / hrefs.pop()).resolve().read_text()
        assert download == nbformat.writes(lab_edition.lab_notebook(name)), name
