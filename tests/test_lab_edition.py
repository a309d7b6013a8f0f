"""The lab edition of the chapters (tools/lab_edition.py, ``make lab``).

Opened in JupyterLab in tests/browser/test_jupyterlab.py; here: that every chapter's lab
edition holds the chapter's own code and its Markdown as the book reads it, and that a
student's edited copy is never overwritten unasked.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import lab_edition
from book_toc import numbered_chapters
from handout_markdown import CHAPTER_LINK, _title


def test_every_chapter_keeps_its_code_and_reads_as_the_book():
    numbers = numbered_chapters()
    for name in numbers:
        chapter = nbformat.read(ROOT / "chapters" / f"{name}.ipynb", as_version=4)
        lab = lab_edition.lab_notebook(name)
        assert [(c.cell_type, c.source) for c in lab.cells if c.cell_type == "code"] == [
            (c.cell_type, c.source) for c in chapter.cells if c.cell_type == "code"], name
        assert [c.cell_type for c in lab.cells] == [c.cell_type for c in chapter.cells], name
        first = next(c.source for c in lab.cells if c.cell_type == "markdown")
        front = yaml.safe_load(re.match(r"---\n(.*?)\n---\n", first, re.DOTALL).group(1))
        number = numbers[name]
        assert front["numbering"]["equation"] is False, name
        assert front["numbering"].get("enumerator") == (None if number is None else f"{number}.%s"), name
        source = "\n".join(c.source for c in chapter.cells if c.cell_type == "markdown")
        text = "\n".join(c.source for c in lab.cells if c.cell_type == "markdown")
        assert "{cite" not in text and "](../" not in text, name
        if "{cite" in source:
            assert "listed below" in text, name
        # every link to another chapter is kept, named by its number and title
        for linked in dict.fromkeys(m.group(2) for m in CHAPTER_LINK.finditer(source)):
            title = re.escape(_title(ROOT / "chapters" / f"{linked}.ipynb"))
            number = numbers[linked]
            named = rf"\*{title}\*" if number is None else rf"(?:[Cc]hapter )?{number}, \*{title}\*"
            links = re.findall(rf"\[([^\]]*)\]\({linked}\.ipynb\)", text)
            own = set(re.findall(rf"\[([^\]]+)\]\({linked}\.ipynb\)", source))  # a link with text of its own keeps it
            assert links and all(re.fullmatch(named, link) or link in own for link in links), (name, linked, links)


def _edit(path: Path, change) -> None:
    notebook = nbformat.read(path, as_version=4)
    change(notebook)
    path.write_text(nbformat.writes(notebook), encoding="utf-8")


def _as_older_edition(out: Path, name: str) -> None:
    """Make ``out/name.ipynb`` what the tool wrote from an older chapter (and recorded)."""
    _edit(out / f"{name}.ipynb", lambda nb: nb.cells[1].__setitem__("source", nb.cells[1].source + "\n# older"))
    record = json.loads((out / lab_edition.RECORD).read_text())
    record[name] = lab_edition.fingerprint((out / f"{name}.ipynb").read_text())
    (out / lab_edition.RECORD).write_text(json.dumps(record))


def test_rerunning_updates_what_it_wrote_and_keeps_what_the_student_changed(tmp_path):
    names = ["02_maml", "04_fomaml"]
    assert lab_edition.write(tmp_path, names) == {"02_maml": "written", "04_fomaml": "written"}
    assert lab_edition.write(tmp_path, names) == {"02_maml": "up to date", "04_fomaml": "up to date"}
    # an older edition, as the tool wrote it: replaced by the current one without asking
    _as_older_edition(tmp_path, "02_maml")
    assert lab_edition.write(tmp_path, ["02_maml"]) == {"02_maml": "written"}
    assert "# older" not in (tmp_path / "02_maml.ipynb").read_text()
    # the student's copy (run, edited, saved): kept, unless they ask
    _edit(tmp_path / "04_fomaml.ipynb", lambda nb: nb.cells[1].__setitem__("source", "print('my note')"))
    assert lab_edition.write(tmp_path, names) == {"02_maml": "up to date", "04_fomaml": "kept"}
    assert "my note" in (tmp_path / "04_fomaml.ipynb").read_text()
    assert lab_edition.write(tmp_path, ["04_fomaml"], replace=True) == {"04_fomaml": "replaced"}
    assert "my note" not in (tmp_path / "04_fomaml.ipynb").read_text()
    assert lab_edition.write(tmp_path, names)["04_fomaml"] == "up to date"


def test_a_notebook_only_opened_with_another_python_is_still_the_tool_s(tmp_path):
    # JupyterLab rewrites (and autosaves) the kernel's metadata when its Python is another
    # patch release: that is not the student's change
    lab_edition.write(tmp_path, ["02_maml"])
    _edit(tmp_path / "02_maml.ipynb", lambda nb: nb.metadata.update(
        language_info={**nb.metadata.get("language_info", {}), "version": "3.11.99"},
        kernelspec={"name": "python3", "display_name": "Python 3 (other)", "language": "python"}))
    assert lab_edition.write(tmp_path, ["02_maml"]) == {"02_maml": "up to date"}
    _as_older_edition(tmp_path, "02_maml")
    _edit(tmp_path / "02_maml.ipynb", lambda nb: nb.metadata.update(language_info={"name": "python"}))
    assert lab_edition.write(tmp_path, ["02_maml"]) == {"02_maml": "written"}


def test_a_lost_record_is_rebuilt_from_the_notebooks_still_as_written(tmp_path):
    lab_edition.write(tmp_path, ["02_maml"])
    (tmp_path / lab_edition.RECORD).unlink()
    assert lab_edition.write(tmp_path, ["02_maml"]) == {"02_maml": "up to date"}
    record = json.loads((tmp_path / lab_edition.RECORD).read_text())  # recorded again
    assert record == {"02_maml": lab_edition.fingerprint((tmp_path / "02_maml.ipynb").read_text())}


def test_a_notebook_whose_chapter_left_the_book_is_kept_and_named(tmp_path, capsys):
    lab_edition.write(tmp_path, ["02_maml"])
    (tmp_path / "02_maml.ipynb").rename(tmp_path / "02_old_name.ipynb")
    record = json.loads((tmp_path / lab_edition.RECORD).read_text())
    (tmp_path / lab_edition.RECORD).write_text(json.dumps({"02_old_name": record["02_maml"]}))
    assert lab_edition.write(tmp_path, ["02_maml"]) == {"02_old_name": "not a chapter", "02_maml": "written"}
    assert (tmp_path / "02_old_name.ipynb").is_file()
    assert lab_edition.main(["--out", str(tmp_path), "02_maml"]) == 0
    assert "02_old_name.ipynb: kept, no longer a chapter of the book" in capsys.readouterr().out


def test_main_says_which_copies_it_kept(tmp_path, capsys):
    assert lab_edition.main(["--out", str(tmp_path), "02_maml"]) == 0
    (tmp_path / "02_maml.ipynb").write_text((tmp_path / "02_maml.ipynb").read_text().replace("MAML", "MY MAML", 1))
    assert lab_edition.main(["--out", str(tmp_path), "02_maml"]) == 0
    out = capsys.readouterr().out
    assert "02_maml.ipynb: kept" in out and "1 kept" in out
    assert "tools/lab_edition.py --replace 02_maml" in out


def test_an_unknown_chapter_is_named_with_the_chapters_there_are(tmp_path):
    with pytest.raises(ValueError, match=r"not chapters of _toc.yml: \['04_fomal'\].*04_fomaml"):
        lab_edition.write(tmp_path, ["04_fomal"])
    assert not (tmp_path / "04_fomal.ipynb").exists()


@pytest.mark.parametrize("tool, argv", [
    ("lab_edition", ["04_fomal", "--out", "{tmp}"]),   # a traceback before
    ("run_solutions", ["99"]),                          # ran nothing, printed an empty table, exit 0
    ("module_map", ["--bogus"]),                        # silently accepted
    ("jupyterlab_screenshots", ["nothere.ipynb"]),      # FileNotFoundError (and for --help)
])
def test_the_readmes_tools_refuse_a_wrong_argument_in_one_line(tool, argv, tmp_path, capsys):
    import importlib
    module = importlib.import_module(tool)
    with pytest.raises(SystemExit) as info:
        module.main([a.format(tmp=tmp_path) for a in argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
