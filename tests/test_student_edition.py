"""The student edition (tools/student_edition.py, tools/grading.yml, `make student`).

* every chapter's student notebook keeps the chapter and its exercises, loses every solution,
  and has a stub under each autograded exercise;
* the Otter-Grader round trip on one chapter: `otter assign`, the handout filled in with the
  chapters' reference solutions gets full marks from `otter run`, a wrong answer does not;
  the autograder zip names the image Gradescope and `otter grade` build (Python 3.11, the
  CPU build of torch as pinned, this package from the wheel the zip carries);
* after `make student`: the built HTML (pages and downloadable notebooks) has no solution.
"""
from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import student_edition as se
from book_toc import page_file, toc_entries

SPEC = se.load_grading()
CHAPTERS = se.load_chapters()
# The round trip: chapter 06 has three autograded exercises and one graded by hand.
ROUND_TRIP = "06_imaml"
WRONG = {  # a wrong answer, the chapter's figure handed back, an answer right only for data swapped in
    "ex-imaml-cg": "def my_cg(matvec, b, steps):\n    return b  # not a solve\n",
    "ex-imaml-quadratic": ("def proximal_jacobian(H, lam):  # the chapter's figure handed back, whatever H is\n"
                           "    return imaml_lambda.figure_data(lam=0.5)['jacobian']\n"),
    "ex-imaml-underdetermined": "X = torch.zeros(2, 5, dtype=torch.float64)\nprojector = torch.eye(5, dtype=torch.float64)\n",
}
#: A submission that replaces a checker, then rebinds `mb`: graded by the checkers as shipped.
CHEAT = {"ex-imaml-cg": (WRONG["ex-imaml-cg"] + "mb.exercises.check_conjugate_gradient = lambda *args: True\n"
                         "import types\nmb = types.SimpleNamespace(exercises=types.SimpleNamespace(\n"
                         "    check_conjugate_gradient=lambda *args: True))\n")}


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def secrets(ex: se.Exercise, chapter_text: str = "") -> list[str]:
    """Lines of an exercise's solution that appear nowhere in the book without solutions
    (any chapter's text, exercises and stubs)."""
    public = _PUBLIC + " " + _normalise(chapter_text)
    found = []
    for line in ex.solution_md.split("\n"):
        line = _normalise(line)
        if len(line) >= 25 and not line.startswith("```") and line not in public:
            found.append(line)
    return found


def _chapter_text_without_solutions(chapter: se.Chapter) -> str:
    return "\n".join(p[1].text if p[0] == "exercise" else p[1] for p in chapter.parts)


_PUBLIC = _normalise("\n".join(
    [_chapter_text_without_solutions(ch) for ch in CHAPTERS] + [e.get("stub", "") for e in SPEC.values()]))


def test_the_spec_covers_every_exercise_once():
    labels = [ex.label for ch in CHAPTERS for ex in ch.exercises]
    assert len(labels) == len(set(labels)) == 38  # 32, ex-repro-one-task (ch09), chapter 10's five
    assert set(labels) == set(SPEC)
    auto = [label for label in labels if SPEC[label]["kind"] == "auto"]
    assert len(auto) == 12  # 10, and chapter 10's two
    for label in auto:  # every autograded test reads a mamlbook.exercises checker
        (checker,) = re.findall(r"mb\.exercises\.(check_\w+)", SPEC[label]["test"])
        assert checker in SPEC[label]["stub"]  # the student runs the same check


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda ch: ch.name)
def test_student_notebook_keeps_the_chapter_and_drops_the_solutions(chapter):
    nb = se.student_notebook(chapter, SPEC)
    text = "\n".join(cell.source for cell in nb.cells)
    assert "{solution-start}" not in text and "{solution-end}" not in text
    assert text.count("{exercise}") == len(chapter.exercises) > 0
    original = nbformat.read(se.CHAPTERS / f"{chapter.name}.ipynb", as_version=4)
    # every code cell of the chapter is there, unchanged and in order
    code = [c.source for c in original.cells if c.cell_type == "code"]
    kept = [c.source for c in nb.cells if c.cell_type == "code" and "mamlbook" not in c.metadata]
    assert kept == code
    stubs = {c.metadata["mamlbook"]["exercise"]: c for c in nb.cells if "mamlbook" in c.metadata}
    assert set(stubs) == {ex.label for ex in chapter.exercises}
    # what an autograded exercise also asks in words has an answer cell right under its stub
    written = [ex.label for ex in chapter.exercises if SPEC[ex.label].get("written")]
    for label in written:
        below = nb.cells[nb.cells.index(stubs[label]) + 1]
        assert below.cell_type == "markdown" and below.metadata.get("mamlbook_written") == label
        assert SPEC[label]["written"] in below.source and "not autograded" in below.source
    assert sum("mamlbook_written" in c.metadata for c in nb.cells) == len(written)
    public = _chapter_text_without_solutions(chapter)
    for ex in chapter.exercises:
        assert ex.solution_md.strip(), f"{ex.label}: no solution found in the chapter"
        if SPEC[ex.label]["kind"] == "auto":
            assert stubs[ex.label].cell_type == "code"
            assert stubs[ex.label].source == SPEC[ex.label]["stub"].rstrip("\n")
        for line in secrets(ex, public):
            assert _normalise(line) not in _normalise(text), f"{ex.label}: solution text left: {line}"


def test_book_source_is_written_for_every_chapter(tmp_path):
    se.write_book(tmp_path / "src", CHAPTERS, SPEC)
    written = sorted(p.stem for p in (tmp_path / "src" / "chapters").glob("*.ipynb"))
    assert written == [ch.name for ch in CHAPTERS]
    entries = toc_entries(tmp_path / "src" / "_toc.yml")
    assert [e for e in entries if e.startswith("chapters/")] == [f"chapters/{name}" for name in written]
    assert "(student edition)" in (tmp_path / "src" / "_config.yml").read_text()
    # every page the table of contents names is there (a missing one fails the strict build)
    assert "api" in entries and "intro" in entries
    for entry in entries:
        assert page_file(entry, tmp_path / "src") is not None, entry
    # the introduction does not promise the solutions this edition leaves out
    intro = (tmp_path / "src" / "intro.md").read_text()
    assert "solutions are hidden" in (se.ROOT / "intro.md").read_text()
    assert "solutions are hidden" not in intro and "this edition has no\n  solutions" in intro
    with pytest.raises(ValueError, match="STUDENT_WORDING"):
        se.student_page_text("intro.md", "an introduction rewritten")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda ch: ch.name)
def test_otter_master_has_one_question_per_exercise(chapter):
    nb = se.otter_master(chapter, SPEC)
    begins = [c.source for c in nb.cells if c.cell_type == "raw" and c.source.startswith("# BEGIN QUESTION")]
    assert len(begins) == len(chapter.exercises)
    for ex, begin in zip(chapter.exercises, begins):
        assert f"name: {ex.label}" in begin
        assert f"manual: {str(SPEC[ex.label]['kind'] == 'manual').lower()}" in begin


def test_a_chapter_graded_by_hand_gets_no_autograder_and_every_master_its_licence():
    by_hand = sorted(ch.name for ch in CHAPTERS if not se.has_autograded(ch, SPEC))
    assert by_hand == ["07_comparison", "09_reproduction", "A1_performance"]
    for chapter in CHAPTERS:
        nb = se.otter_master(chapter, SPEC)
        config = yaml.safe_load(nb.cells[0].source.removeprefix("# ASSIGNMENT CONFIG\n"))
        assert config["generate"] is (chapter.name not in by_hand), chapter.name
        assert nb.cells[1].cell_type == "markdown" and "CC BY 4.0" in nb.cells[1].source
        assert "MIT, Copyright (c) 2026 The mamlbook authors" in nb.cells[1].source  # the notice MIT asks copies to keep


def test_a_test_grades_with_the_checkers_as_shipped(monkeypatch):
    import mamlbook as mb

    source = se.otter_test("ex-x", "mb.exercises.check_pooled_mse(pooled_mse)")
    assert source.startswith("def test_ex_x(pooled_mse):")  # mb is not taken from the notebook
    namespace = {}
    exec(source, namespace)
    # what a notebook could do before the tests run: replace the checker
    monkeypatch.setattr(mb.exercises, "check_pooled_mse", lambda *args: True)
    with pytest.raises(AssertionError, match="not within 1e-3"):
        namespace["test_ex_x"](pooled_mse=0.0)


def test_a_test_grades_in_a_notebook_that_never_used_the_checkers():
    """Otter runs the tests in the notebook's process; the package loads its submodules
    on first use, so a notebook whose answer cells never called a checker (the stub's
    check line deleted) has no ``mamlbook.exercises`` yet. Its tests must grade anyway."""
    tests = {label: se.otter_test(label, SPEC[label]["test"])
             for label in ("ex-maml-inner-step", "ex-few-shot-pooled-mse")}
    program = (
        "import sys\nimport mamlbook as mb\n"
        "assert 'mamlbook.exercises' not in sys.modules\n"
        f"tests = {tests!r}\n"
        "namespace = {}\n"
        "for source in tests.values():\n"
        "    exec(source, namespace)\n"
        "def my_inner_step(params, grads, inner_lr):\n"
        "    return {k: p - inner_lr * grads[k] for k, p in params.items()}\n"
        "namespace['test_ex_maml_inner_step'](my_inner_step)  # right: passes\n"
        "try:\n"
        "    namespace['test_ex_few_shot_pooled_mse'](0.0)  # wrong: the checker's verdict\n"
        "except AssertionError as err:\n"
        "    print('verdict:', err)\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "verdict: mismatch" in done.stdout and "not within 1e-3" in done.stdout, done.stdout


def _otter_run(zip_path: Path, submission: Path, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(Path(sys.executable).with_name("otter")), "run", "--no-logo", "-a", str(zip_path),
                    "-o", str(out), submission.name], cwd=submission.parent, check=True,
                   capture_output=True, text=True)
    results = json.loads((out / "results.json").read_text())
    scores = {t["name"]: (t["score"], t["max_score"]) for t in results["tests"] if "max_score" in t}
    return scores


@pytest.mark.slow  # otter assign, then the chapter executed twice by otter run
def test_otter_round_trip_reference_full_marks_wrong_answer_below(tmp_path):
    (chapter,) = se.load_chapters([ROUND_TRIP[:2]])
    out = tmp_path / "assignments"
    start = time.perf_counter()
    se.write_assignments(out, [chapter], SPEC, handouts=tmp_path / "handouts")
    handout = out / chapter.name / "student" / f"{chapter.name}.ipynb"
    # what goes to students: the handout alone, copied out of the instructor's folder
    assert sorted(p.relative_to(tmp_path / "handouts").as_posix()
                  for p in (tmp_path / "handouts").rglob("*")) == [chapter.name, f"{chapter.name}/{handout.name}"]
    autograder = out / chapter.name / "autograder" / f"{chapter.name}-autograder.zip"
    assert handout.exists() and autograder.exists()
    assert [p.name for p in handout.parent.iterdir()] == [handout.name]  # no wheel for students

    # the image Gradescope and `otter grade` build from the zip: Python 3.11, the pinned CPU
    # torch, and this package from the wheel inside the zip, where Otter unpacks it
    with zipfile.ZipFile(autograder) as zipped:
        environment = yaml.safe_load(zipped.read("environment.yml"))
        (wheel,) = [n for n in zipped.namelist() if n.endswith(".whl")]
        with zipfile.ZipFile(zipped.open(wheel)) as inner:
            assert "mamlbook/exercises.py" in inner.namelist()
    pip = [d for d in environment["dependencies"] if isinstance(d, dict)][0]["pip"]
    torch_pin = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
                 if line.startswith("torch==")]
    assert f"python={se.GRADING_PYTHON}" in environment["dependencies"]
    assert wheel.startswith("files/mamlbook-") and f"/autograder/source/{wheel}" in pip
    assert torch_pin and torch_pin[0] in pip
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip

    # the handout: the licence line under Otter's init cell (it travels without the book's
    # footer) after the front matter that numbers exercises as the book does (Otter keeps
    # it), no solution, one stub per autograded exercise, an answer cell per manual one
    cells = nbformat.read(handout, as_version=4).cells
    assert "otter.Notebook" in cells[0].source
    assert cells[1].source == se.Handout(chapter.name).front_matter() + se.CREDIT
    text = "\n".join(c.source for c in cells)
    public = _chapter_text_without_solutions(chapter)
    for ex in chapter.exercises:
        for line in secrets(ex, public):
            assert _normalise(line) not in _normalise(text), f"{ex.label}: solution text left: {line}"
    # Otter keeps the written parts' answer cells (outside its questions) in the handout
    answers = {se.written_answer(SPEC[ex.label]): ex.label for ex in chapter.exercises if SPEC[ex.label].get("written")}
    written = [answers[c.source] for c in cells if c.cell_type == "markdown" and c.source in answers]
    assert written == ["ex-imaml-quadratic", "ex-imaml-underdetermined"]
    auto = [ex.label for ex in chapter.exercises if SPEC[ex.label]["kind"] == "auto"]
    full = sum(SPEC[label]["points"] for label in auto)

    reference = se.fill(handout, tmp_path / "reference" / handout.name)
    assert sorted(reference) == sorted(auto)
    scores = _otter_run(autograder, tmp_path / "reference" / handout.name, tmp_path / "reference-results")
    got = sum(s for s, _ in scores.values())
    print(f"\n{chapter.name} reference solutions: {got:g} / {full:g} {scores}")
    assert {label: scores[label] for label in auto} == {label: (SPEC[label]["points"],) * 2 for label in auto}

    # the cheat is the last of the chapter's autograded cells (a rebound `mb` would break the later ones)
    assert auto[-1] == "ex-imaml-underdetermined" and auto.index("ex-imaml-cg") < auto.index("ex-imaml-quadratic")
    wrong = {**WRONG, "ex-imaml-underdetermined": WRONG["ex-imaml-underdetermined"] + CHEAT["ex-imaml-cg"]}
    se.fill(handout, tmp_path / "wrong" / handout.name, wrong=wrong)
    scores = _otter_run(autograder, tmp_path / "wrong" / handout.name, tmp_path / "wrong-results")
    wrong_total = sum(s for s, _ in scores.values())
    print(f"{chapter.name} with wrong and swapped-data answers and a replaced checker: {wrong_total:g} / {full:g} {scores}")
    for label in WRONG:
        assert scores[label][0] == 0, label
    assert wrong_total == full - sum(SPEC[label]["points"] for label in WRONG) < full
    print(f"round trip: {time.perf_counter() - start:.0f} s")


STUDENT_HTML = os.environ.get("MAMLBOOK_STUDENT_HTML")


@pytest.mark.skipif(not STUDENT_HTML, reason="set MAMLBOOK_STUDENT_HTML=_build/student/html (make student)")
def test_built_html_has_no_solution():
    root = Path(STUDENT_HTML)
    pages = {p.relative_to(root).as_posix(): p.read_text(errors="replace")
             for p in root.rglob("*") if p.suffix in (".html", ".ipynb", ".md", ".txt", ".js") and p.is_file()
             and "_static" not in p.parts}
    assert any(name.startswith("chapters/") for name in pages), f"no chapter page under {root}"
    for ch in CHAPTERS:
        assert f"chapters/{ch.name}.html" in pages
        assert f"_sources/chapters/{ch.name}.ipynb" in pages  # the download
    plain = {}
    for name, text in pages.items():
        assert 'class="solution' not in text, f"{name}: a sphinx-exercise solution block"
        if name.endswith(".ipynb"):
            text = "\n".join(c.source for c in nbformat.reads(text, as_version=4).cells)
        else:
            text = html.unescape(re.sub(r"<[^>]+>", "", text))
        plain[name] = _normalise(text)
        assert "solution-start" not in text and "solution-end" not in text, name
        assert "Solution to" not in text, f"{name}: a sphinx-exercise solution block"
    for ch in CHAPTERS:
        public = _chapter_text_without_solutions(ch)
        for ex in ch.exercises:
            for line in secrets(ex, public):
                # the HTML renders Markdown: compare the line's words without markup
                words = _normalise(re.sub(r"[`*$\\{}]", " ", line))
                for name, text in plain.items():
                    assert _normalise(line) not in text, f"{name}: solution of {ex.label}: {line}"
                    if not name.endswith(".ipynb") and len(words) > 40 and "$" not in line:
                        assert words not in _normalise(re.sub(r"[`*$\\{}]", " ", text)), name
