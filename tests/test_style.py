"""The chapters as stored: their code fits the book's 88-character column (ruff format,
pyproject.toml), their kernel metadata is what the kernel reports, and every figure
cell carries alt text.

The rendered book shows code at a size where 88 monospace characters fill the text
column; a longer line would make its block scroll sideways. JupyterLab marks a notebook
modified when the kernel's metadata differs from the stored one.
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from figure_cells import alt_text_problem, figure_cells  # noqa: E402 (tools/ is not a package)
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is installed by requirements.txt")
def test_chapters_are_ruff_formatted():
    done = subprocess.run([RUFF, "format", "--check", "chapters"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_code_fits_88_columns(chapter):
    nb = json.loads(chapter.read_text())
    long = [
        line.rstrip("\n")
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
        for line in cell["source"]
        if len(line.rstrip("\n")) > 88
    ]
    assert not long, f"{chapter.name}: {len(long)} code lines over 88 characters: {long[:3]}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_stored_without_outputs(chapter):
    nb = json.loads(chapter.read_text())
    with_outputs = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and c.get("outputs")]
    assert not with_outputs, f"{chapter.name}: cells {with_outputs} are stored with outputs"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_code_in_markdown_fits_88_columns(chapter):
    # Solutions and shell commands are fenced code in markdown cells: same column.
    nb = json.loads(chapter.read_text())
    long = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        inside = False
        for line in "".join(cell["source"]).split("\n"):
            if line.strip().startswith("```"):
                inside = line.strip() in ("```python", "```bash", "```text") and not inside
                continue
            if inside and len(line) > 88:
                long.append(line)
    assert not long, f"{chapter.name}: {len(long)} fenced code lines over 88 characters: {long[:3]}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_metadata_is_what_its_kernel_reports(chapter):
    """JupyterLab replaces a notebook's ``kernelspec`` and ``language_info`` with the
    kernel's own when it opens, and marks the notebook modified when they differ
    (tools/jupyterlab_screenshots.py checks that in a browser): the chapters store what
    ipykernel reports, apart from the patch version of Python."""
    from ipykernel.ipkernel import IPythonKernel
    from ipykernel.kernelspec import get_kernel_dict

    metadata = json.loads(chapter.read_text())["metadata"]
    kernel = get_kernel_dict()
    assert metadata["kernelspec"] == {
        "display_name": kernel["display_name"], "language": kernel["language"], "name": "python3"
    }
    stored = dict(metadata["language_info"])
    assert stored.pop("version").startswith("3.11.")
    reported = dict(IPythonKernel.language_info)
    reported.pop("version")
    assert stored == reported


@pytest.mark.parametrize(
    ("alt", "problem"),
    [
        ("a plot", "6 characters, fewer than 40"),
        ("../_images/" + "0" * 64 + ".svg", "a file name"),
        ("Two panels: held-out accuracy against meta-iterations and against minutes.", None),
    ],
)
def test_the_rule_for_alt_text(alt, problem):
    assert alt_text_problem(alt) == problem


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_figure_cell_describes_its_figure(chapter):
    """A reader who cannot see a figure hears its alt text: MyST-NB writes a cell's
    ``mystnb.image.alt`` to the ``<img>`` (without it, the image's file name)."""
    cells = json.loads(chapter.read_text())["cells"]
    problems = []
    for figure in figure_cells(chapter):
        alt = cells[figure.index]["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
        problem = alt_text_problem(alt) if alt else "no mystnb.image.alt in its metadata"
        if problem:
            problems.append(f"cell {figure.index} ({figure.reason}): {problem}")
    assert not problems, f"{chapter.name}: figure cells without alt text:\n  " + "\n  ".join(problems)


def test_every_figure_has_a_caption_and_a_name_of_its_own():
    """Every figure is numbered and captioned (MyST-NB's ``mystnb.figure``: "Fig. 8.3"), its
    name unique in the book; and a figure cell shows nothing else rich: MyST-NB gives the
    caption and name to every rich output of the cell, so a table displayed beside the
    figure would take them too (a duplicate target, which fails the strict build)."""
    names, problems = {}, []
    for chapter in CHAPTERS:
        cells = json.loads(chapter.read_text())["cells"]
        for figure in figure_cells(chapter):
            cell = cells[figure.index]
            meta = cell["metadata"].get("mystnb", {}).get("figure", {})
            where = f"{chapter.stem} cell {figure.index}"
            if len(meta.get("caption", "")) < 20 or not meta.get("name", "").startswith("fig-"):
                problems.append(f"{where}: no caption of a sentence, or no name fig-...: {meta}")
            if meta.get("name") in names:
                problems.append(f"{where}: name {meta['name']!r} also in {names[meta['name']]}")
            names[meta.get("name")] = where
            if re.search(r"\bdisplay\(|mb\.notebook\.\w*table\(", "".join(cell["source"])):
                problems.append(f"{where}: shows a table beside its figure (split the cell)")
    assert not problems, "\n  ".join(problems)
