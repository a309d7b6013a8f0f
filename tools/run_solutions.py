"""Every exercise's reference solution, executed in its chapter's namespace.

    python tools/run_solutions.py [CHAPTER ...]     # e.g. 05_reptile; default: all

Each chapter runs as a notebook in a Jupyter kernel (from the chapters' folder, as the
book builds it): its code cells in order, and each exercise's reference solution (its
code cells and ``python`` fences, `tools/student_edition.py`) as a cell of its own where
the exercise stands. Prints, per solution, pass (no exception) or the error, and its
seconds; exits 1 if any failed. Solutions without code (answers in words) are listed as
such.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from student_edition import CHAPTERS, load_chapters  # noqa: E402


def run(chapter) -> list[tuple[str, str, float]]:
    nb = nbformat.v4.new_notebook(metadata=chapter.metadata)
    labels = {}
    for part in chapter.parts:
        if part[0] == "code":
            nb.cells.append(nbformat.v4.new_code_cell(part[1]))
        elif part[0] == "exercise" and part[1].reference_code.strip():
            labels[len(nb.cells)] = part[1].label
            nb.cells.append(nbformat.v4.new_code_cell(part[1].reference_code))
    client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True, record_timing=True,
                            resources={"metadata": {"path": str(CHAPTERS)}})
    client.execute()
    rows = []
    for index, label in labels.items():
        cell = nb.cells[index]
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        timing = cell.metadata.get("execution", {})
        seconds = float("nan")
        if "shell.execute_reply" in timing and "iopub.execute_input" in timing:
            parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
            seconds = (parse(timing["shell.execute_reply"]) - parse(timing["iopub.execute_input"])).total_seconds()
        status = "pass" if not errors else f"FAIL {errors[0]['ename']}: {errors[0]['evalue'][:120]}"
        rows.append((label, status, seconds))
    for ex in chapter.exercises:
        if not ex.reference_code.strip():
            rows.append((ex.label, "no code (answer in words)", 0.0))
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", metavar="CHAPTER",
                        help="a chapter or the start of its name, e.g. 05_reptile or 05 (default: all)")
    args = parser.parse_args(argv)
    try:
        chapters = load_chapters(args.chapters or None)
    except ValueError as err:  # a typo ran nothing and exited 0
        parser.error(f"argument CHAPTER: {err}")
    failed = 0
    print("| chapter | exercise | result | seconds |\n|---|---|---|---|")
    for chapter in chapters:
        start = time.perf_counter()
        for label, status, seconds in run(chapter):
            failed += status.startswith("FAIL")
            print(f"| {chapter.name} | {label} | {status} | {seconds:.1f} |", flush=True)
        print(f"| {chapter.name} | (whole chapter with its solutions) | | {time.perf_counter() - start:.1f} |",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
