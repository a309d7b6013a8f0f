"""tools/prose_numbers.py: which prose numbers it counts as quoted, and when it says a
quoted number is no longer printed (its use on the built book: tests/browser)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import prose_numbers as pn


def page(prose: str, output: str) -> str:
    return (
        f"<html><body><article><p>{prose}</p>"
        f'<div class="cell docutils container"><div class="cell_output docutils container">'
        f"<pre>{output}</pre></div></div></article></body></html>"
    )


def write_book(tmp_path: Path, prose: str, output: str) -> Path:
    (tmp_path / "chapters").mkdir(parents=True, exist_ok=True)
    (tmp_path / "chapters" / "02_maml.html").write_text(page(prose, output))
    return tmp_path


def test_prose_and_outputs_are_separated_and_references_are_not_numbers():
    paragraphs, outputs = pn.page_text(
        page("By eq. (2.3) and eqs. (5.9) and (5.10), Exercise 4.1, § 6.2 and (3.4), "
             "the error is 0.590 <code>inner_lr=0.005</code>, paired "
             r'<span class="math">\(-0.038 \pm 0.031\)</span>', "mean 0.590 ± 0.053")
    )
    assert pn.printed_values(outputs) == ["0.590", "0.053"]
    quoted = [t for p in paragraphs for t in pn.NUMBER.findall(p)]
    assert quoted == ["0.590", "-0.038", "0.031"]  # formulas count; no reference, no code
    # a ratio printed as 1.27x is a number; 3x3 and 0x1f are labels
    assert pn.printed_values("1.27x the loop, 14.7x; 3x3 filters, 0x1f, v2") == ["1.27", "14.7"]


def test_a_quoted_number_matches_its_printed_value_rounded_or_as_a_percentage():
    assert pn.matches("0.59", ["0.590"]) and pn.matches("0.59", ["0.5903"])
    assert pn.matches("2.64", ["2.635"])  # half up, as a reader rounds
    assert pn.matches("95.18%", ["0.9518"])  # a fraction printed, a percentage quoted
    assert not pn.matches("95.18", ["0.9518"])  # ... only when the prose writes %
    assert pn.matches("8.11", pn.printed_values("8.11e+06"))  # 8.11 × 10^6 in the prose
    assert pn.matches("−0.038", ["-0.038"]) and pn.matches("0.038", ["-0.038"])  # a magnitude
    assert not pn.matches("-0.038", ["0.038"])  # a sign written is a sign checked
    assert not pn.matches("0.59", ["0.62", "590"])
    assert not pn.matches("0.59", ["5.93e+23"])  # no overflow, no match
    assert pn.matched_by("0.37", ["0.367", "0.5", "0.373"]) == ["0.367", "0.373"]
    assert pn.printed_values("| −0.040 ± 0.030 |") == ["-0.040", "0.030"]  # a table's minus sign, as the prose's
    assert pn.printed_values("| 3.3e−16 |") == ["3.3e-16", "3.3"]  # a table's exponent, with its minus sign


def test_small_integers_and_years_are_not_counted_as_quoted_results():
    assert not pn.quotable("10") and not pn.quotable("2017") and not pn.quotable("0.5")
    assert pn.quotable("600") and pn.quotable("0.59") and pn.quotable("1,761")


def test_the_check_names_a_quoted_number_the_page_no_longer_prints(tmp_path):
    book = write_book(tmp_path, "MAML reaches 0.368 after ten steps, 95.18% in all.",
                      "10 steps: 0.368, accuracy 0.9518")
    taken = pn.snapshot([book])
    assert taken == {"02_maml": {"0.368": ["0.368"], "95.18%": ["0.9518"]}}
    assert pn.check(book, taken) == {}
    write_book(tmp_path, "MAML reaches 0.368 after ten steps, 95.18% in all.",
               "10 steps: 0.311, accuracy 0.9518")  # retrained
    (problem,) = pn.check(book, taken)["02_maml"]
    assert problem.startswith("0.368:") and "after ten steps" in problem and "printed 0.368" in problem
    write_book(tmp_path, "MAML reaches 0.311 after ten steps, 95.18% in all.",
               "10 steps: 0.311, accuracy 0.9518")  # the prose follows ...
    (problem,) = pn.check(book, taken)["02_maml"]
    assert problem.startswith("0.368: no longer in the prose")  # ... and the snapshot must too
    assert pn.check(book, pn.snapshot([book])) == {}


def test_a_snapshot_of_two_builds_keeps_what_both_print(tmp_path):
    first = write_book(tmp_path / "a", "took 2.41 s; error 0.59", "2.41 s, 0.590")
    second = write_book(tmp_path / "b", "took 2.41 s; error 0.59", "2.87 s, 0.590")  # a timing
    assert pn.snapshot([first, second]) == {"02_maml": {"0.59": ["0.590"]}}


def test_a_folder_without_chapter_pages_or_an_unknown_chapter_is_a_usage_error(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for argv, says in ((["check", str(empty)], "argument BUILD"),
                       (["unmatched", "99_nope", "--build", str(write_book(tmp_path / "b", "", ""))],
                        "argument CHAPTER: '99_nope'")):
        try:
            pn.main(argv)
        except SystemExit as stop:
            assert stop.code == 2
        else:
            raise AssertionError(f"{argv} was accepted")
        assert says in capsys.readouterr().err


def test_the_command_line_takes_a_snapshot_and_checks_it(tmp_path, monkeypatch, capsys):
    # (the check's local name once shadowed the snapshot function: `snapshot` failed)
    book = write_book(tmp_path, "MAML reaches 0.368 after ten steps.", "10 steps: 0.368")
    monkeypatch.setattr(pn, "SNAPSHOT", tmp_path / "prose_numbers.json")
    monkeypatch.setattr(pn, "ROOT", tmp_path)
    assert pn.main(["snapshot", str(book)]) == 0
    assert json.loads((tmp_path / "prose_numbers.json").read_text()) == {"02_maml": {"0.368": ["0.368"]}}
    assert pn.main(["check", str(book)]) == 0
    assert "all 1 prose numbers of 1 chapters still quoted and printed" in capsys.readouterr().out
