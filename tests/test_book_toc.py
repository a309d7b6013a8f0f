"""tools/book_toc.py: the one reader of the book's table of contents."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from book_toc import docname, numbered_chapters, page_file, toc_entries  # tools/ is not a package


def test_every_chapter_once_in_book_order_root_first():
    entries = toc_entries()
    assert entries[0] == "intro"
    chapters = [e for e in entries if e.startswith("chapters/")]
    assert chapters == sorted(f"chapters/{p.stem}" for p in (ROOT / "chapters").glob("*.ipynb"))
    for entry in entries:
        assert page_file(entry) is not None, entry


def test_nested_sections_suffixes_and_repeats(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        "format: jb-book\nroot: index\nparts:\n"
        "  - caption: A\n    chapters:\n      - file: a.md\n        sections:\n"
        "          - file: a/one\n          - file: a/two.ipynb\n"
        "  - caption: B\n    chapters:\n      - file: b\n      - file: a.md\n"
    )
    assert toc_entries(toc) == ["index", "a.md", "a/one", "a/two.ipynb", "b"]
    assert [docname(e) for e in toc_entries(toc)] == ["index", "a", "a/one", "a/two", "b"]
    (tmp_path / "a.md").write_text("# A")  # a suffix given is the file; none: .md, then .ipynb
    (tmp_path / "b.ipynb").write_text("{}")
    (tmp_path / "b.md").write_text("# B")
    assert page_file("a.md", tmp_path) == tmp_path / "a.md" and page_file("a", tmp_path) == tmp_path / "a.md"
    assert page_file("b", tmp_path) == tmp_path / "b.md"
    assert page_file("a/one", tmp_path) is None and page_file("b.ipynb", tmp_path) == tmp_path / "b.ipynb"


def test_chapters_are_the_notebooks_of_chapters_numbered_as_the_book_numbers_them():
    numbered = numbered_chapters()
    assert sorted(numbered) == sorted(p.stem for p in (ROOT / "chapters").glob("*.ipynb"))
    assert list(numbered) == [e.removeprefix("chapters/") for e in toc_entries() if e.startswith("chapters/")]
    assert [n for n in numbered.values() if n is not None] == list(range(1, 11))
    assert numbered["A1_performance"] is None  # the appendix's part is not numbered
