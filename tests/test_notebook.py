"""mamlbook.notebook: package source and tables as Markdown the book renders."""
import re

import pytest

import mamlbook as mb
from mamlbook import notebook


def test_show_source_is_the_file_verbatim_with_its_location():
    md = notebook.show_source(mb.adapt)._repr_markdown_()
    assert md.startswith("```python\n# mamlbook/functional.py, line ")
    assert md.endswith("\n```")
    line = int(re.search(r"line (\d+)", md).group(1))
    import inspect

    lines, first = inspect.getsourcelines(mb.adapt)
    assert line == first
    assert "".join(lines).rstrip("\n") in md


def test_show_source_several_objects_and_a_part():
    md = notebook.show_source(mb.adapt, mb.parameters_of).text
    assert md.count("```python") == 2
    part = notebook.show_source(mb.adapt, start="return phi").text
    assert part.split("\n")[2] == "return phi, first_losses"


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: notebook.show_source(), "at least one"),
        (lambda: notebook.show_source(len), "functions, classes or methods"),
        (lambda: notebook.show_source(mb.adapt, start="no such text"), "start="),
        (lambda: notebook.show_source(mb.adapt, mb.adapt, start="x"), "ONE object"),
    ],
)
def test_show_source_bad_input(call, argument):
    with pytest.raises((TypeError, ValueError), match=re.escape(argument)):
        call()


def test_table_markdown():
    md = notebook.table(["method", "a|b"], ((m, f"{v:.2f}") for m, v in [("maml", 0.5)]), "cap").text
    assert md.splitlines() == ["**cap**", "", "| method | a\\|b |", "|---|---|", "| maml | 0.50 |"]
    with pytest.raises(ValueError, match=r"rows\[0\] has 1 cells, expected 2"):
        notebook.table(["a", "b"], [["x"]])
    with pytest.raises(ValueError, match="header"):
        notebook.table([], [])
