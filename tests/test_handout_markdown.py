"""A chapter's Markdown rewritten for a handout (tools/handout_markdown.py).

The handout opened in JupyterLab is checked in tests/browser/test_jupyterlab.py;
here: what each rewriting produces, and that every chapter's handout is left with nothing
that needs the book.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import student_edition as se
from handout_markdown import Handout


def _front_matter(text: str) -> dict:
    found = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    assert found, text[:80]
    return yaml.safe_load(found.group(1))


def test_front_matter_numbers_exercises_as_the_book_and_drops_the_second_equation_number():
    assert _front_matter(Handout("06_imaml").front_matter()) == {
        "numbering": {"enumerator": "6.%s", "equation": False}}
    assert _front_matter(Handout("10_wider_map").front_matter())["numbering"]["enumerator"] == "10.%s"
    # the appendix is unnumbered in the book: its exercises are 1, 2, ... there too
    assert _front_matter(Handout("A1_performance").front_matter()) == {"numbering": {"equation": False}}


def test_citations_read_as_the_book_prints_them_and_are_listed_where_the_book_links_its_list():
    handout = Handout("06_imaml")
    # several works in the reference list's order, whatever the order written (as the book)
    text = handout.markdown("MAML {cite}`hospedales2021survey, finn2017maml`; as {cite:t}`nocedal2006numerical` show.")
    assert text == "MAML [Finn et al., 2017, Hospedales et al., 2021]; as Nocedal and Wright [2006] show."
    assert handout.markdown("{cite:t}`nichol2018reptile,finn2017maml`") == "Finn et al. [2017], Nichol et al. [2018]"
    with pytest.raises(ValueError, match="no 'listed in"):
        handout.check_complete()
    # a solution's citation (record=False; Otter removes solutions) stays out of the list
    assert handout.markdown("{cite}`rajeswaran2019imaml`", record=False) == "[Rajeswaran et al., 2019]"
    listed = handout.markdown("All works cited here are listed in [](../references.md).")
    head, *items = listed.split("\n")
    assert head == "All works cited here are listed below." and items[0] == ""
    # sorted by author as in the book's list, each entry on one line, labelled as cited
    assert [item.split("]")[0] for item in items[1:]] == [
        "- [Finn et al., 2017", "- [Hospedales et al., 2021", "- [Nichol et al., 2018", "- [Nocedal and Wright, 2006"]
    assert "Chelsea Finn, Pieter Abbeel, and Sergey Levine. Model-agnostic meta-learning" in items[1]
    handout.check_complete()
    handout.markdown("later {cite}`rajeswaran2019imaml`")
    with pytest.raises(ValueError, match="rajeswaran2019imaml.*after the reference list"):
        handout.check_complete()


def test_a_work_without_a_year_is_cited_by_its_authors(tmp_path):
    bib = tmp_path / "refs.bib"
    bib.write_text("@misc{notes, author = {Ada Lovelace}, title = {Notes}}\n")
    handout = Handout("06_imaml", bib=bib)
    assert handout.markdown("{cite}`notes` and {cite:t}`notes`") == "[Lovelace] and Lovelace"


def test_links_to_chapters_become_their_numbers_and_titles():
    handout = Handout("06_imaml")
    assert handout.markdown("as in [](05_reptile.ipynb), and [](A1_performance.ipynb).") == (
        "as in chapter 5, *Reptile*, and *Appendix: performance*.")
    # a sentence starts with it; the text already says "chapter"
    assert handout.markdown("Done. [](04_fomaml.ipynb) shows") == "Done. Chapter 4, *First-order MAML* shows"
    assert handout.markdown("**Prerequisites.** [](05_reptile.ipynb)") == "**Prerequisites.** Chapter 5, *Reptile*"
    assert handout.markdown("the Hessian chapter [](03_hessian.ipynb)") == (
        "the Hessian chapter 3, *Second-order MAML: the Hessian derivation*")


def test_links_to_chapters_with_text_of_their_own_keep_it_with_the_number():
    handout = Handout("06_imaml")
    assert handout.markdown("[Reptile](05_reptile.ipynb) and the [performance appendix](A1_performance.ipynb)") == (
        "Reptile (chapter 5) and the performance appendix")
    assert handout.markdown("the classifier of [chapter 08](08_classification.ipynb)") == (
        "the classifier of chapter 8, *Few-shot classification on real Omniglot*")
    assert Handout("06_imaml", links=True).markdown("[Reptile](05_reptile.ipynb)") == "[Reptile](05_reptile.ipynb)"


def test_the_books_short_list_of_a_chapters_works_gives_way_to_the_handouts_own():
    handout = Handout("07_comparison")
    text = handout.markdown("All works cited here are listed in [](../references.md); this chapter cites, in order:\n\n"
                            "- {cite:t}`finn2017maml`: *Model-Agnostic Meta-Learning*\n"
                            "- {cite:t}`nichol2018reptile`: *On First-Order Meta-Learning Algorithms*")
    head, blank, *items = text.split("\n")
    assert head == "All works cited here are listed below." and blank == ""
    assert [item.split("]")[0] for item in items] == ["- [Finn et al., 2017", "- [Nichol et al., 2018"]
    handout.check_complete()


def test_same_page_references_need_their_target_in_the_handout():
    handout = Handout("03_hessian")
    handout.markdown("({ref}`ex-hessian-reverse-mode` below)")
    handout.markdown("```{exercise}\n:label: ex-hessian-reverse-mode\n\nDo it.\n```")
    handout.check_complete()
    handout.markdown("see {prf:ref}`alg-elsewhere`")
    handout.markdown("(alg-elsewhere)=", record=False)  # in a solution: removed from the handout
    with pytest.raises(ValueError, match=r"\['alg-elsewhere'\].*not in the handout"):
        handout.check_complete()
    # a reference with text of its own to another chapter's label: caught the same way
    other = Handout("04_fomaml")
    other.markdown("as {ref}`question 3 of the Hessian chapter <second-order-terms-may-be-dropped>` says")
    with pytest.raises(ValueError, match=r"\['second-order-terms-may-be-dropped'\].*not in the handout"):
        other.check_complete()


@pytest.mark.parametrize("text, match", [
    ("see {doc}`02_maml`", r"\{doc\}`"),
    ("see [the API](../api.md)", r"api\.md"),
    ("see [](02_maml.ipynb#the-inner-step)", r"02_maml\.ipynb"),
    ("see [the script](../benchmarks/conv_step.py)", r"conv_step\.py"),
    ("```{figure} ../_assets/x.png\n```", r"\{figure\}"),
])
def test_what_a_handout_cannot_show_raises(text, match):
    with pytest.raises(ValueError, match=match):
        Handout("06_imaml").markdown(text)


def test_with_links_a_chapter_link_stays_a_link_named_as_the_book_names_it():
    handout = Handout("06_imaml", links=True)
    assert handout.markdown("See [](02_maml.ipynb) and the Hessian chapter [](03_hessian.ipynb).") == (
        "See [chapter 2, *MAML: learning an initialisation that adapts*](02_maml.ipynb) and the Hessian "
        "chapter [3, *Second-order MAML: the Hessian derivation*](03_hessian.ipynb).")
    assert handout.markdown("[](../chapters/A1_performance.ipynb)") == (
        "[*Appendix: performance*](A1_performance.ipynb)")
    with pytest.raises(ValueError, match="needs the book"):  # any other relative link still needs the book
        handout.markdown("[the intro](../intro.md)")


def test_unknown_keys_chapters_and_links_are_refused():
    with pytest.raises(KeyError, match="nosuchkey2020"):
        Handout("06_imaml").markdown("{cite}`nosuchkey2020`")
    with pytest.raises(ValueError, match="11_future.ipynb"):
        Handout("06_imaml").markdown("[](11_future.ipynb)")
    with pytest.raises(ValueError, match="not a chapter"):
        Handout("99_none")


@pytest.mark.parametrize("chapter", se.load_chapters(), ids=lambda ch: ch.name)
def test_every_handout_needs_nothing_from_the_book(chapter):
    nb = se.otter_master(chapter, se.load_grading())  # raises if anything is left (Handout.markdown)
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert markdown[0].startswith("---\nnumbering:") and markdown[0].endswith(se.CREDIT)
    text = "\n".join(markdown)
    assert "{cite" not in text and not re.search(r"\]\([^)]*\.ipynb\)", text)
    assert text.count("listed below") == 1
