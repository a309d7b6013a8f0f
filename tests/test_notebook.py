"""mamlbook.notebook: package source and tables as Markdown the book renders."""
import re

import pytest

import mamlbook as mb
from mamlbook import notebook

PM = "\u202f±\u202f"  # how a table sets " ± " (narrow no-break spaces)


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
    assert md.splitlines() == ["**cap**", "", "| method | a\\|b |", "|---|--:|", "| maml | 0.50 |"]
    assert notebook.table([""], [["x"]]).text.splitlines()[0] == "|  |"  # an unnamed column stays unnamed
    assert notebook.table(["method", "k = 25"], [["x", "1"]]).text.splitlines()[0] == "| method | k\u00a0=\u00a025 |"
    with pytest.raises(ValueError, match=r"rows\[0\] has 1 cells, expected 2"):
        notebook.table(["a", "b"], [["x"]])
    with pytest.raises(ValueError, match="header"):
        notebook.table([], [])


def test_table_typesets_numbers_and_right_aligns_columns_of_numbers():
    rows = [["MAML", "-0.108", "0.590 ± 0.053", "2/600", "1.3e-01", "95.39 (97.68 with transduction)", "-", "x"],
            ["Reptile", "+0.084", "-", "0/600", "-4.2e+00", "98.90 (99.48)", "", "1"],
            ["total", "", "**1.5**", "", "", "", "", ""]]
    md = notebook.table(["k", "a", "b", "c", "d", "e", "f", "g"], rows).text.splitlines()
    # the first column names the rows; a column with a word in it stays left; so does one without a value;
    # an empty cell is empty (a total row's), a bold number a number
    assert md[1] == "|---|--:|--:|--:|--:|---|---|---|"
    # ± held to its numbers (narrow no-break spaces), a minus sign in an exponent too
    assert md[2] == f"| MAML | −0.108 | 0.590{PM}0.053 | 2/600 | 1.3e−01 | 95.39 (97.68 with transduction) | – | x |"
    assert md[3] == "| Reptile | +0.084 | – | 0/600 | −4.2e+00 | 98.90 (99.48) |  | 1 |"
    assert md[4] == "| total |  | **1.5** |  |  |  |  |  |"
    # a hyphen in a word or a date is no minus sign; one before a number is, anywhere in the cell, and
    # one in an exponent (where a browser could break "1e-" from "04")
    assert notebook.table(["a", "b", "c"], [["5-way", "1e-04", "2017-01-01"]]).text.splitlines()[-1] == \
        "| 5-way | 1e−04 | 2017-01-01 |"
    assert notebook.table(["a", "b"], [["x", "0.59 (-0.1, 0.3) [-6%; 52%]"], ["y", "-.5"]]).text.splitlines()[1:] == \
        ["|---|--:|", "| x | 0.59 (−0.1, 0.3) [−6%; 52%] |", "| y | −.5 |"]
    # the book's tables: paired differences and percentages right-aligned
    assert notebook.table(["d", "1 step"], [["x − y", "−0.038 ± 0.031 [−6%; 52%]"]]).text.splitlines()[1] == "|---|--:|"


def test_adaptation_table_matches_a_per_step_computation():
    import torch

    generator = torch.Generator().manual_seed(0)
    curves = {"maml": torch.rand(200, 4, generator=generator, dtype=torch.float64) + 0.5,
              "mine": torch.rand(200, 4, generator=generator, dtype=torch.float64) + 0.5}
    curves["mine"][3, 2] = float("nan")  # one task diverged: counted, left out
    curves["mine"][7, 3] = 100.0  # grown more than 10-fold from its start: also diverged
    md = notebook.adaptation_table(curves, (0, 3), extra={"paper": {"maml": {3: "0.35"}}}).text
    caption, _, *lines = md.splitlines()
    assert caption == ("**query loss after k test-time steps on 200 tasks: mean ± 95% interval and median over the "
                       "tasks on which no step diverged**")
    assert lines[0] == "| method | steps | mean ± 95% CI | median | diverged | paper |"
    uneven = notebook.adaptation_table({"maml": curves["maml"], "mine": curves["mine"][:100]}, (0,)).text
    assert uneven.startswith("**query loss after k test-time steps: mean ± 95%")  # no single number of tasks
    assert len(lines) == 2 + 4
    for line, (name, label, k) in zip(lines[2:], [("maml", "MAML", 0), ("maml", "MAML", 3),
                                                  ("mine", "mine", 0), ("mine", "mine", 3)]):
        curve = curves[name]
        kept = curve[torch.isfinite(curve).all(1) & (curve <= 10 * curve[:, :1]).all(1)]
        mean = kept[:, k].mean()
        half = 1.96 * kept[:, k].std() / len(kept) ** 0.5  # normal quantile from 100 tasks on
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[:5] == [label, str(k), f"{mean:.3f}{PM}{half:.3f}", f"{kept[:, k].median():.3f}",
                             f"{200 - len(kept)}/200"]
        assert cells[5] == ("0.35" if (name, k) == ("maml", 3) else "–")


def test_adaptation_table_bad_input():
    import torch

    with pytest.raises(ValueError, match=r"extra\['paper'\] names \['reptile'\]"):
        notebook.adaptation_table({"maml": torch.ones(5, 3)}, (1,), extra={"paper": {"reptile": {1: 0.5}}})
    with pytest.raises(ValueError, match=r"steps must be .* in \[0, 2\]"):
        notebook.adaptation_table({"maml": torch.ones(5, 3)}, (1, 5))


def test_paired_table_shows_the_paired_differences():
    import torch

    curves = {"x": torch.tensor([[1.0, 0.5], [1.0, 0.7], [1.0, 0.2]]),
              "y": torch.tensor([[1.0, 0.4], [1.0, 0.4], [1.0, 20.0]])}  # y diverged on task 2
    paired = mb.protocol.paired_differences(curves, {"x − y": ("x", "y")}, steps=(1,))
    lines = notebook.paired_table(paired).text.splitlines()
    (mean, half, _, _), = paired.cells["x − y"].values()
    assert mean == pytest.approx(0.2) and half == pytest.approx(12.706205 * 0.1, rel=1e-6)  # t₀.₉₇₅(1)·s/√2, s = 0.1·√2
    assert lines[0] == "**task by task: mean difference ± 95% CI over the 2 of 3 tasks no run diverged on**"
    assert lines[2:] == ["| difference | 1 step |", "|---|--:|", f"| x − y | +0.200{PM}{half:.3f} |"]
    flipped = mb.protocol.paired_differences(curves, {"y − x": ("y", "x")}, steps=(1,))
    assert notebook.paired_table(flipped).text.splitlines()[-1] == f"| y − x | −0.200{PM}{half:.3f} |"
    level = {"x": torch.tensor([[1.0, 0.5], [1.0, 0.7]]), "y": torch.tensor([[1.0, 0.5001], [1.0, 0.7]])}
    tiny = mb.protocol.paired_differences(level, {"x − y": ("x", "y")}, steps=iter([1]))  # any iterable
    assert notebook.paired_table(tiny).text.splitlines()[-1].startswith(f"| x − y | 0.000{PM}")  # not −0.000
    # details: x − y is 0.2 over a mean of 0.4 for y (+50%), x lower on neither task (0%)
    detailed = notebook.paired_table(paired, details=True).text.splitlines()
    assert detailed[-1] == f"| x − y | +0.200{PM}{half:.3f} [+50%; 0%] |"
    assert "in brackets, the difference as a share of the second run's mean" in detailed[0]
    assert notebook.paired_table(flipped, details=True).text.splitlines()[-1].endswith(" [−33%; 100%] |")


def test_signed_numbers_have_a_minus_sign_and_no_signed_zero():
    assert notebook.signed("-0.010") == "−0.010" and notebook.signed("+2.0") == "+2.0"
    assert notebook.signed("-0.000") == notebook.signed("+0.000") == "0.000"
    assert notebook.signed("-6%") == "−6%"
