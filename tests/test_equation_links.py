"""Equation references as links (_ext/equation_links.py), on small doctrees, without
building the book (the built book is checked in tests/browser/test_navigation.py)."""
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from docutils import nodes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_ext"))
import equation_links  # noqa: E402


def app_for(docname: str = "chapters/05") -> SimpleNamespace:
    env = SimpleNamespace(docname=docname)
    builder = SimpleNamespace(get_relative_uri=lambda source, target: target.split("/")[-1] + ".html")
    return SimpleNamespace(env=env, builder=builder)


def page(*children) -> nodes.document:
    doctree = nodes.section()
    doctree.extend(children)
    return doctree


def formula(*numbers: str) -> nodes.math_block:
    return nodes.math_block("", " \\\\ ".join(f"x \\tag{{{n}}}" for n in numbers))


def read(app, docname: str, doctree) -> None:
    app.env.docname = docname
    equation_links.collect_tags(app, doctree)


def links(doctree) -> list[tuple[str, str]]:
    return [(r.astext(), r["refuri"]) for r in doctree.findall(nodes.reference)]


def test_every_form_of_reference_links_to_its_formula_on_its_page_or_another():
    app = app_for()
    other, here = page(formula("2.3")), page(formula("5.1", "5.2"))
    read(app, "chapters/02", other)
    read(app, "chapters/05", here)
    assert here[0]["ids"] == ["eq-5-1", "eq-5-2"] and other[0]["ids"] == ["eq-2-3"]
    text = page(nodes.paragraph("", "", nodes.Text("is exactly eq. (5.1): an outer step (eq. 2.3, over θ); "),
                                nodes.Text("Eqs. (5.1) and"), nodes.Text("\n"), nodes.Text("(5.2) hold, eqs. 5.1-5.2 too.")))
    equation_links.link_references(app, text, "chapters/05")
    assert links(text) == [("eq. (5.1)", "#eq-5-1"), ("eq. 2.3", "02.html#eq-2-3"), ("Eqs. (5.1)", "#eq-5-1"),
                           ("(5.2)", "#eq-5-2"), ("eqs. 5.1", "#eq-5-1"), ("5.2", "#eq-5-2")]
    # the text around the links is unchanged
    assert text.astext() == ("is exactly eq. (5.1): an outer step (eq. 2.3, over θ); Eqs. (5.1) and\n(5.2) hold, "
                             "eqs. 5.1-5.2 too.")


def test_code_formulas_and_headings_are_left_alone():
    app = app_for()
    read(app, "chapters/05", page(formula("5.1")))
    doctree = page(nodes.title("", "Checking eq. (5.1)"), nodes.literal_block("", "x = 1  # eq. (5.1)"),
                   nodes.paragraph("", "", nodes.literal("", "eq. (5.1)"), nodes.math("", "eq. (5.1)")))
    equation_links.link_references(app, doctree, "chapters/05")
    assert links(doctree) == []


def test_a_reference_to_no_formula_warns_and_a_number_tagged_twice_is_refused(caplog):
    app = app_for()
    read(app, "chapters/05", page(formula("5.1")))
    doctree = page(nodes.paragraph("", "by eq. (5.9), not a version 2.3.4 or eq. 2.3.4"))
    with caplog.at_level(logging.WARNING):
        equation_links.link_references(app, doctree, "chapters/05")
    assert links(doctree) == [] and "eq. (5.9) is referred to, but no formula" in caplog.text
    assert "2.3" not in caplog.text  # "eq. 2.3.4" is not an equation number
    with pytest.raises(ValueError, match=r"equation \(5\.1\) is tagged twice: in chapters/05 and in chapters/06"):
        read(app, "chapters/06", page(formula("5.1")))
    with pytest.raises(ValueError, match=r"tagged twice: in chapters/07 and in chapters/07"):
        read(app, "chapters/07", page(formula("7.1"), formula("7.1")))


def test_a_parallel_readers_numbers_are_merged_and_a_clash_refused():
    env, other = SimpleNamespace(), SimpleNamespace()
    env.mamlbook_equation_tags = {"5.1": "chapters/05"}
    other.mamlbook_equation_tags = {"6.1": "chapters/06", "9.9": "chapters/99"}
    equation_links.merge(None, env, {"chapters/06"}, other)
    assert env.mamlbook_equation_tags == {"5.1": "chapters/05", "6.1": "chapters/06"}  # 9.9: not its document
    other.mamlbook_equation_tags = {"5.1": "chapters/06"}
    with pytest.raises(ValueError, match="tagged twice"):
        equation_links.merge(None, env, {"chapters/06"}, other)
    equation_links.purge(None, env, "chapters/05")
    assert env.mamlbook_equation_tags == {"6.1": "chapters/06"}
