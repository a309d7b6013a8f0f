"""tools/book_toc.py: the one reader of the book's table of contents."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from book_toc import docname, toc_entries  # tools/ is not a package


def test_every_chapter_once_in_book_order_root_first():
    entries = toc_entries()
    assert entries[0] == "intro"
    chapters = [e for e in entries if e.startswith("chapters/")]
    assert chapters == sorted(f"chapters/{p.stem}" for p in (ROOT / "chapters").glob("*.ipynb"))
    assert len(entries) == len(set(entries))
    for entry in entries:
        assert any((ROOT / f"{entry}{ext}").is_file() for ext in (".md", ".ipynb")), entry


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
