"""The chapters' code fits the book's 88-character column (ruff format, pyproject.toml).

The rendered book shows code at a size where 88 monospace characters fill the text
column; a longer line would make its block scroll sideways.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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
