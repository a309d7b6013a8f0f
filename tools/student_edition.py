"""The student edition, generated from chapters/*.ipynb and tools/grading.yml.

    python tools/student_edition.py book    --out _build/student-src
        student notebooks (every {solution-start}…{solution-end} removed, a stub cell under
        each autograded exercise, an answer cell under each manual one) plus the book's
        _config.yml/_toc.yml, ready for `jupyter-book build`;
    python tools/student_edition.py assign  --out _build/instructor/assignments \
                                            --handouts _build/student/handouts
        for each chapter an Otter-Grader master notebook (with the solutions), turned by
        `otter assign` into <chapter>/student/ (the handout and its public checks) and
        <chapter>/autograder/*.zip (what `otter run -a ZIP SUBMISSION` grades with; it
        carries a wheel of this package for the image Gradescope builds from it; none for
        chapters 07, 09 and A1, whose exercises are all graded by hand), all
        under the instructor's folder; the handouts alone are copied to --handouts, so
        that _build/student/ holds nothing a student may not see;
    python tools/student_edition.py fill HANDOUT OUT [--wrong LABEL CODE ...]
        the handout with the reference solutions filled in (for tests and for checking an
        autograder); --wrong LABEL CODE (repeatable) puts the Python source CODE in place of
        exercise LABEL's answer, e.g. a deliberately wrong one.

The chapters stay the single source: the exercises' text and the reference solutions are
read from them; tools/grading.yml holds only what the chapters do not say (points, which
checker, the stub, the name the reference answer is bound to).
"""
from __future__ import annotations

import argparse
import ast
import builtins
import copy
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml
from book_toc import page_file, toc_entries
from chapters_from_wheel import build_wheel
from handout_markdown import Handout

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
GRADING = ROOT / "tools" / "grading.yml"
#: The grading image's Python (Gradescope, `otter grade`): the version the book is tested on.
GRADING_PYTHON = "3.11"

EXERCISE_START = re.compile(r"^(`{3,}|:{3,})\{exercise\}")
SOLUTION_START = re.compile(r"^(`{3,}|:{3,})\{solution-start\}\s+(\S+)")
SOLUTION_END = re.compile(r"^(`{3,}|:{3,})\{solution-end\}")
LABEL = re.compile(r"^:label:\s*(\S+)")
PYTHON_FENCE = re.compile(r"```(?:python|\{code-cell\}[^\n]*)\n(.*?)```", re.DOTALL)
MANUAL_ANSWER = "*Your answer (graded by hand; add code cells under this one for code, plots or measurements):*\n\n"


def written_answer(entry: dict) -> str | None:
    """The text of the answer cell for the words an autograded exercise also asks for
    (``written`` in tools/grading.yml), or None when it asks for none."""
    if not entry.get("written"):
        return None
    return f"*Your written answer ({entry['written']}; read by your instructor, not autograded):*\n\n"


def written_answer_cells(ex: "Exercise", entry: dict) -> list[nbformat.NotebookNode]:
    """That answer cell, under an autograded exercise's stub, in the student notebook and
    the Otter master alike (none when the exercise asks for no words). Its own metadata
    key: ``mamlbook`` marks the one cell of an exercise that Otter's test reads."""
    text = written_answer(entry) if entry["kind"] == "auto" else None
    return [nbformat.v4.new_markdown_cell(text, metadata={"mamlbook_written": ex.label})] if text else []


@dataclass
class Exercise:
    label: str
    chapter: str
    text: str  # the {exercise} directive, as in the chapter
    solution_md: str = ""  # the solution's Markdown (with its fenced code)
    solution_code: list[str] = field(default_factory=list)  # code cells and ```python fences

    @property
    def reference_code(self) -> str:
        return "\n\n".join(c.strip("\n") for c in self.solution_code)


@dataclass
class Chapter:
    name: str
    # (cell type, source, metadata) or ("exercise", Exercise), in order; no solutions
    parts: list[tuple]
    exercises: list[Exercise]
    metadata: dict


def _close_fence(line: str, opener: str) -> bool:
    return line.strip() == opener


def parse_chapter(path: Path) -> Chapter:
    """Split a chapter into its parts with the solutions cut out (and kept on the side)."""
    nb = nbformat.read(path, as_version=4)
    parts: list[tuple] = []
    exercises: list[Exercise] = []
    by_label: dict[str, Exercise] = {}
    solution: Exercise | None = None  # inside a solution (may span cells)
    for cell in nb.cells:
        if cell.cell_type == "code":
            if solution is not None:
                solution.solution_code.append(cell.source)
            else:
                parts.append(("code", cell.source, cell.metadata))
            continue
        if cell.cell_type != "markdown":
            if solution is None:
                parts.append((cell.cell_type, cell.source, cell.metadata))
            continue
        lines = cell.source.split("\n")
        kept: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            if solution is not None:
                if SOLUTION_END.match(line):
                    opener = SOLUTION_END.match(line).group(1)
                    i += 1
                    while i < len(lines) and not _close_fence(lines[i], opener):
                        i += 1
                    i += 1
                    solution.solution_code += PYTHON_FENCE.findall(solution.solution_md)
                    solution = None
                else:
                    solution.solution_md += line + "\n"
                    i += 1
                continue
            start = SOLUTION_START.match(line)
            if start:
                label = start.group(2)
                if label not in by_label:
                    raise ValueError(f"{path.name}: solution for unknown exercise {label}")
                solution = by_label[label]
                i += 1
                while i < len(lines) and not _close_fence(lines[i], start.group(1)):
                    i += 1  # the directive's options (:class: dropdown)
                i += 1
                continue
            if EXERCISE_START.match(line):
                opener = EXERCISE_START.match(line).group(1)
                block = [line]
                i += 1
                while i < len(lines) and not _close_fence(lines[i], opener):
                    block.append(lines[i])
                    i += 1
                block.append(lines[i] if i < len(lines) else opener)
                i += 1
                labels = [m.group(1) for m in map(LABEL.match, block) if m]
                if not labels:
                    raise ValueError(f"{path.name}: an exercise without :label:")
                if "\n".join(kept).strip():
                    parts.append(("markdown", "\n".join(kept).strip("\n"), {}))
                kept = []
                ex = Exercise(labels[0], path.stem, "\n".join(block))
                exercises.append(ex)
                by_label[ex.label] = ex
                parts.append(("exercise", ex))
                continue
            kept.append(line)
            i += 1
        if "\n".join(kept).strip():
            parts.append(("markdown", "\n".join(kept).strip("\n"), cell.metadata))
    if solution is not None:
        raise ValueError(f"{path.name}: solution of {solution.label} has no solution-end")
    return Chapter(path.stem, parts, exercises, nb.metadata)


def load_grading(path: Path = GRADING) -> dict[str, dict]:
    spec = yaml.safe_load(path.read_text())
    for label, entry in spec.items():
        if entry.get("kind") not in ("auto", "manual"):
            raise ValueError(f"{path.name}: {label}: kind must be auto or manual")
        if entry["kind"] == "auto" and not {"stub", "test"} <= set(entry):
            raise ValueError(f"{path.name}: {label}: an autograded exercise needs stub and test")
        if not isinstance(entry.get("points"), (int, float)):
            raise ValueError(f"{path.name}: {label}: points missing")
    return spec


def load_chapters(names: list[str] | None = None) -> list[Chapter]:
    paths = sorted(CHAPTERS.glob("*.ipynb"))
    if names:
        unmatched = [n for n in names if not any(p.stem.startswith(n) for p in paths)]
        if unmatched:  # a typo ran nothing and reported success
            raise ValueError(f"no chapter's name starts with {unmatched} (chapters: "
                             f"{', '.join(p.stem for p in paths)})")
        paths = [p for p in paths if any(p.stem.startswith(n) for n in names)]
    return [parse_chapter(p) for p in paths]


def check_spec_covers(chapters: list[Chapter], spec: dict[str, dict], complete: bool = True) -> None:
    labels = [ex.label for ch in chapters for ex in ch.exercises]
    missing = [label for label in labels if label not in spec]
    if missing:
        raise SystemExit(f"tools/grading.yml has no entry for: {', '.join(missing)}")
    extra = sorted(set(spec) - set(labels))
    if complete and extra:
        raise SystemExit(f"tools/grading.yml has entries for no exercise: {', '.join(extra)}")


def student_notebook(chapter: Chapter, spec: dict[str, dict]) -> nbformat.NotebookNode:
    """The chapter without solutions; a stub under each autograded exercise."""
    nb = nbformat.v4.new_notebook(metadata=copy.deepcopy(chapter.metadata))
    for part in chapter.parts:
        if part[0] == "exercise":
            ex, entry = part[1], spec[part[1].label]
            nb.cells.append(nbformat.v4.new_markdown_cell(ex.text))
            meta = {"mamlbook": {"exercise": ex.label, "points": entry["points"]}}
            if entry["kind"] == "auto":
                nb.cells.append(nbformat.v4.new_code_cell(entry["stub"].rstrip("\n"), metadata=meta))
                nb.cells.extend(written_answer_cells(ex, entry))
            else:
                nb.cells.append(nbformat.v4.new_markdown_cell(MANUAL_ANSWER, metadata=meta))
        elif part[0] == "code":
            nb.cells.append(nbformat.v4.new_code_cell(part[1], metadata=copy.deepcopy(part[2])))
        elif part[0] == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(part[1], metadata=copy.deepcopy(part[2])))
        else:
            nb.cells.append(nbformat.v4.new_raw_cell(part[1]))
    return nb


def _raw(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_raw_cell(text)


def grading_requirements(wheel_name: str) -> str:
    """What the grading image installs besides Otter (its environment.yml's pip list).

    The notebook imports torch and mamlbook, so Gradescope and `otter grade` (Docker),
    which build their own image from the zip, need both: torch pinned as in
    requirements.txt, from PyTorch's CPU index (on Linux PyPI's default wheel is the CUDA
    build, gigabytes), and this package from the wheel the zip carries (Otter unpacks the
    zip into /autograder/source, the zip's files/ folder included).
    """
    (torch_pin,) = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
                    if line.startswith("torch==")]
    return ("--extra-index-url https://download.pytorch.org/whl/cpu\n"
            f"{torch_pin}\n/autograder/source/files/{wheel_name}\n")


#: The licence line each handout carries: the words of the book's footer (html.extra_footer
#: in _config.yml; change both together) and of LICENSE-BOOK.md.
CREDIT = ("*From* mamlbook, by the mamlbook authors. Text and figures: CC BY 4.0 "
          "(https://creativecommons.org/licenses/by/4.0/; credit \"mamlbook, by the mamlbook authors\"); "
          "code: MIT, Copyright (c) 2026 The mamlbook authors (the licence's full text: "
          "https://opensource.org/license/mit, and the LICENSE file the wheel carries); "
          "Omniglot data: MIT, Copyright (c) 2015 Brenden Lake; cite Lake, Salakhutdinov and "
          "Tenenbaum (2015), Human-level concept learning through probabilistic program induction, "
          "Science 350(6266).")


def has_autograded(chapter: Chapter, spec: dict[str, dict]) -> bool:
    """Whether any exercise of ``chapter`` is autograded (``kind: auto``)."""
    return any(spec[ex.label]["kind"] == "auto" for ex in chapter.exercises)


def otter_master(chapter: Chapter, spec: dict[str, dict],
                 wheel_name: str | None = None) -> nbformat.NotebookNode:
    """The chapter in Otter Assign's format: one question per exercise. With
    ``wheel_name`` (a wheel of this package and ``grading-requirements.txt`` beside the
    master), the autograder zip carries the wheel and its image installs it
    (`grading_requirements`)."""
    nb = nbformat.v4.new_notebook(metadata=copy.deepcopy(chapter.metadata))
    config = {
        "name": chapter.name,
        "run_tests": False,  # tests/test_student_edition.py grades the reference solutions
        "init_cell": True,
        "check_all_cell": False,
        "export_cell": False,
        "solutions_pdf": False,
        "template_pdf": False,
        "show_question_points": True,
        "tests": {"ok_format": False},  # exception-based tests: the checkers' messages
        # the autograder zip that `otter run -a` grades with; none for a chapter whose
        # exercises are all graded by hand (a zip without tests makes `otter run` crash)
        "generate": has_autograded(chapter, spec),
    }
    if wheel_name is not None and config["generate"]:  # the image Gradescope and `otter grade` build from the zip
        config |= {"python_version": GRADING_PYTHON, "requirements": "grading-requirements.txt",
                   "autograder_files": [wheel_name]}
    nb.cells.append(_raw("# ASSIGNMENT CONFIG\n" + yaml.safe_dump(config, sort_keys=False)))
    # a handout travels without the book: its footer's licence, and its first Markdown
    # cell's front matter numbers exercises and equations as the book does (handout_markdown)
    handout = Handout(chapter.name)
    nb.cells.append(nbformat.v4.new_markdown_cell(handout.front_matter() + CREDIT))
    for part in chapter.parts:
        if part[0] == "code":
            nb.cells.append(nbformat.v4.new_code_cell(part[1], metadata=copy.deepcopy(part[2])))
            continue
        if part[0] == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(handout.markdown(part[1]), metadata=copy.deepcopy(part[2])))
            continue
        if part[0] != "exercise":
            nb.cells.append(nbformat.v4.new_raw_cell(part[1]))
            continue
        ex, entry = part[1], spec[part[1].label]
        auto = entry["kind"] == "auto"
        question = {"name": ex.label, "points": entry["points"], "manual": not auto}
        nb.cells.append(_raw("# BEGIN QUESTION\n" + yaml.safe_dump(question, sort_keys=False)))
        nb.cells.append(nbformat.v4.new_markdown_cell(handout.markdown(ex.text)))
        nb.cells.append(_raw("# BEGIN SOLUTION"))
        if auto:
            reference = reference_answer(ex, entry)
            nb.cells.append(nbformat.v4.new_code_cell(
                '""" # BEGIN PROMPT\n' + entry["stub"].rstrip("\n") + '\n""" # END PROMPT\n'
                "# BEGIN SOLUTION NO PROMPT\n" + reference + "\n# END SOLUTION"))
        else:
            # the master's solution: readable alone too (Otter removes it from the handout)
            solution = handout.markdown(ex.solution_md.strip("\n"), record=False)
            nb.cells.append(nbformat.v4.new_markdown_cell(solution or "(no solution)"))
        nb.cells.append(_raw("# END SOLUTION"))
        if auto:
            nb.cells.append(_raw("# BEGIN TESTS"))
            nb.cells.append(nbformat.v4.new_code_cell(otter_test(ex.label, entry["test"])))
            nb.cells.append(_raw("# END TESTS"))
        nb.cells.append(_raw("# END QUESTION"))
        nb.cells.extend(written_answer_cells(ex, entry))  # outside the question: Otter keeps it as it is
    handout.check_complete()
    return nb


def otter_test(label: str, expression: str) -> str:
    """An exception-based Otter test: the checker's verdict, its message on failure.

    Its parameters are the notebook's globals the expression reads (Otter passes them in;
    a name the student did not define arrives as None, and the checker says what is wrong),
    except ``mb``: the test imports the installed package itself and reloads its
    checkers, so a notebook that rebinds ``mb`` or replaces a checker (``mb.exercises.
    check_x = lambda *a: True``) is graded by the checkers as shipped. The expression
    must read nothing else the student controls but the answer (the checker builds its
    own data). Not tamper-proof: the test runs in the notebook's process, which may have
    changed any module a checker uses (README, "Instructors").
    """
    expression = expression.strip()
    names = sorted({node.id for node in ast.walk(ast.parse(expression, mode="eval"))
                    if isinstance(node, ast.Name) and node.id not in dir(builtins)} - {"mb"})
    return (f"def test_{label.replace('-', '_')}({', '.join(names)}):\n"
            "    import contextlib, importlib, io\n"
            "    import mamlbook as mb  # the installed package, not the notebook's `mb`\n"
            "    # its checkers as shipped (imported first: a notebook that never used them has not)\n"
            "    mb.exercises = importlib.reload(importlib.import_module('mamlbook.exercises'))\n"
            "    said = io.StringIO()\n"
            "    with contextlib.redirect_stdout(said):\n"
            f"        verdict = {expression}\n"
            "    assert verdict is True, said.getvalue().strip() or 'the check did not pass'")


def reference_answer(ex: Exercise, entry: dict) -> str:
    """The chapter's solution code, then the grading spec's line naming the answer."""
    pieces = [ex.reference_code, entry.get("reference", "")]
    return "\n\n".join(p.strip("\n") for p in pieces if p.strip())


def toc_pages(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """The files of the book's pages outside ``chapters/`` (intro, API, back matter), from its table of contents."""
    pages = []
    for entry in toc_entries(toc):
        if not entry.startswith("chapters/"):
            found = page_file(entry, ROOT)
            if found is None:
                raise FileNotFoundError(f"{toc.name} names {entry!r}, which has no .md or .ipynb file")
            pages.append(str(found.relative_to(ROOT)))
    return pages


#: What the student edition's pages outside the chapters say differently: (page, the
#: book's words, the student edition's). A sentence missing from its page stops the build.
STUDENT_WORDING = (
    ("intro.md", "Each chapter ends with exercises; solutions are hidden in\n  dropdowns, and",
     "Each chapter ends with exercises (this edition has no\n  solutions), and"),
)


def student_page_text(name: str, text: str) -> str:
    """``text`` of the book's page ``name`` as the student edition shows it (`STUDENT_WORDING`)."""
    for page, book, student in STUDENT_WORDING:
        if page == name:
            if book not in text:
                raise ValueError(f"{name} no longer says {book!r}: update STUDENT_WORDING in {Path(__file__).name}")
            text = text.replace(book, student)
    return text


def write_book(out: Path, chapters: list[Chapter], spec: dict[str, dict]) -> None:
    if out.exists():
        shutil.rmtree(out)
    (out / "chapters").mkdir(parents=True)
    for chapter in chapters:
        nbformat.write(student_notebook(chapter, spec), out / "chapters" / f"{chapter.name}.ipynb")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["title"] = config["title"] + " (student edition)"
    config["only_build_toc_files"] = True
    (out / "_config.yml").write_text(
        "# Generated by tools/student_edition.py from the book's _config.yml: do not edit.\n"
        + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    for name in ("_toc.yml", "references.bib", *toc_pages()):  # every page of the book but the chapters
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(student_page_text(name, (ROOT / name).read_text()))
    for name in ("_ext", "_assets", "_vendor"):
        if (ROOT / name).exists():
            (out / name).symlink_to(ROOT / name, target_is_directory=True)


def write_assignments(out: Path, chapters: list[Chapter], spec: dict[str, dict],
                      handouts: Path | None = None) -> None:
    """Otter assignments under ``out`` (masters and autograders hold the solutions: the
    instructor's); with ``handouts``, each chapter's student folder copied there too.
    A wheel of this package is built beside the masters and goes into every autograder
    zip, whose grading image installs it (`grading_requirements`)."""
    masters = out / "_masters"
    masters.mkdir(parents=True, exist_ok=True)
    for old in masters.glob("mamlbook-*.whl"):  # one wheel beside the masters: this version's
        old.unlink()
    wheel = build_wheel(masters)
    (masters / "grading-requirements.txt").write_text(grading_requirements(wheel.name))
    otter = Path(sys.executable).with_name("otter")
    for chapter in chapters:
        master = masters / f"{chapter.name}.ipynb"
        nbformat.write(otter_master(chapter, spec, wheel.name), master)
        result = out / chapter.name
        if result.exists():
            shutil.rmtree(result)
        subprocess.run([str(otter), "assign", "--no-pdfs", str(master), str(result)], check=True,
                       cwd=masters)
        graded = "every exercise graded by hand (no autograder zip)"
        if has_autograded(chapter, spec):
            (zipped,) = (result / "autograder").glob("*-autograder_*.zip")
            graded = zipped.rename(result / "autograder" / f"{chapter.name}-autograder.zip")  # a stable name
        handout = result / "student"
        if handouts is not None:
            if (handouts / chapter.name).exists():
                shutil.rmtree(handouts / chapter.name)
            handout = Path(shutil.copytree(result / "student", handouts / chapter.name))
        print(f"{chapter.name}: {handout / (chapter.name + '.ipynb')}, {graded}")


def fill(handout: Path, out: Path, wrong: dict[str, str] | None = None) -> dict[str, str]:
    """Replace each stub of the handout by the chapter's reference solution (or a wrong answer).

    Returns {label: the code that went in}.
    """
    spec = load_grading()
    chapters = {ch.name: ch for ch in load_chapters()}
    nb = nbformat.read(handout, as_version=4)
    name = handout.stem
    filled = {}
    stubs = {spec[ex.label]["stub"].rstrip("\n"): ex for ex in chapters[name].exercises
             if spec[ex.label]["kind"] == "auto"}
    for cell in nb.cells:
        ex = stubs.get(cell.source.rstrip("\n")) if cell.cell_type == "code" else None
        if ex is None:
            continue
        code = (wrong or {}).get(ex.label) or reference_answer(ex, spec[ex.label])
        cell.source = code
        filled[ex.label] = code
    missing = {ex.label for ex in stubs.values()} - set(filled)
    if missing:
        raise ValueError(f"{handout}: no stub cell found for {sorted(missing)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return filled


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    book = sub.add_parser("book", help="student notebooks and the book's configuration")
    book.add_argument("--out", type=Path, default=ROOT / "_build" / "student-src")
    assign = sub.add_parser("assign", help="Otter-Grader assignments, one per chapter")
    assign.add_argument("--out", type=Path, default=ROOT / "_build" / "instructor" / "assignments",
                        help="the instructor's folder: masters, autograders (they hold the solutions)")
    assign.add_argument("--handouts", type=Path, default=ROOT / "_build" / "student" / "handouts",
                        help="where each chapter's handout folder is copied (safe to give students)")
    for p in (book, assign):
        p.add_argument("--chapters", nargs="*", help="chapter prefixes, e.g. 04 (default: all)")
    fill_p = sub.add_parser("fill", help="fill a handout with the reference solutions")
    fill_p.add_argument("handout", type=Path)
    fill_p.add_argument("out", type=Path)
    fill_p.add_argument("--wrong", nargs=2, action="append", metavar=("LABEL", "CODE"), default=[])
    args = parser.parse_args(argv)
    if args.command == "fill":
        fill(args.handout, args.out, dict(args.wrong))
        return
    spec = load_grading()
    try:
        chapters = load_chapters(args.chapters)
    except ValueError as err:
        parser.error(f"argument CHAPTER: {err}")
    check_spec_covers(chapters, spec, complete=not args.chapters)
    if args.command == "book":
        write_book(args.out, chapters, spec)
        print(f"student edition source: {args.out} ({len(chapters)} chapters)")
    else:
        write_assignments(args.out.resolve(), chapters, spec, args.handouts.resolve())
    auto = [ex.label for ch in chapters for ex in ch.exercises if spec[ex.label]["kind"] == "auto"]
    total = sum(len(ch.exercises) for ch in chapters)
    print(f"{total} exercises: {len(auto)} autograded, {total - len(auto)} graded by hand")


if __name__ == "__main__":
    main()
