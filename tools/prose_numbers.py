"""The numbers a chapter's prose quotes from its own outputs: a snapshot, and its check.

Every number the prose quotes should be printed by a cell on the same page. Which prose
numbers are measured (and which are constants, citations or settings) a program cannot
tell, so a snapshot records the measured ones: each number in a built page's prose, of
at least two significant digits (integers from 100), that equals, or rounds to, a number
in that page's cell outputs, with the printed numbers it matched. On every build,
`tests/browser/test_book_prose_numbers.py` checks that the prose still quotes each of them
and that one of the printed numbers it matched is still printed, as written then: after
a retrained checkpoint changes an output, it names the sentence to update; after the
prose changes, the snapshot is taken again.

    python tools/prose_numbers.py snapshot [BUILD ...]  # tests/browser/prose_numbers.json
    python tools/prose_numbers.py check [BUILD]         # the test's check, as a report
    python tools/prose_numbers.py unmatched CHAPTER     # prose numbers no output prints

``BUILD`` is a built book's ``html`` folder (default ``_build/html``). With several, the
snapshot keeps the printed numbers found in every one: timings printed live differ from
build to build, so a prose number that matches one only by chance is left out.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SNAPSHOT = ROOT / "tests" / "browser" / "prose_numbers.json"
# a number as written: 0.59, 1,761, -0.038 or −0.038, 8.11e+06, a ratio 1.27x; not part
# of a word or label (3x3, 0x1f)
NUMBER = re.compile(r"(?<![\w.\-−])[-−]?\d+(?:,\d{3})*(?:\.\d+)?(?:e[-+−]?\d+)?(?!(?!x(?!\w))\w)")
# references, not quantities: eq. (2.3), eqs. (5.9) and (5.10), Exercise 4.1, § 6.2,
# and an equation number alone in parentheses, (3.4)
TEX_LABEL = re.compile(r"\\(?:tag|label|ref|eqref)\{[^}]*\}")
REFERENCE = re.compile(
    r"(?:\b(?:eqs?\.|equations?|exercises?|sections?|tables?|figures?|chapters?|algorithms?)|§)"
    r"\s*\(?\d+(?:\.\d+)*\)?(?:\s*(?:,|and|or|to|–|-)\s*\(?\d+(?:\.\d+)*\)?)*"
    r"|\([1-9]0?\.\d{1,2}\)", re.IGNORECASE)


def page_text(html: str) -> tuple[list[str], str]:
    """(the prose's paragraphs, the text of every cell output) of a built chapter page.

    Prose is the article without its code cells (input and output), code (inline or in
    blocks: settings and solution code, not quoted results) and citations; formulas are
    prose ($-0.038 \\pm 0.031$), less their equation numbers.
    """
    soup = BeautifulSoup(html, "html.parser")
    article = soup.find("article") or soup
    outputs = " \n".join(o.get_text(" ") for o in article.select("div.cell_output"))
    for tag in article.select("div.cell, pre, code, .citation, .footnote, span.cite, a.reference"):
        tag.decompose()
    paragraphs = [REFERENCE.sub(" ", TEX_LABEL.sub(" ", " ".join(p.get_text(" ").split())))
                  for p in article.find_all(["p", "li", "td", "th"]) + article.select("div.math")]
    return [p for p in paragraphs if p.strip()], outputs


def _decimal(token: str) -> Decimal | None:
    try:
        return Decimal(token.replace("−", "-").replace(",", ""))
    except InvalidOperation:
        return None


def quotable(token: str) -> bool:
    """At least two significant digits, integers from 100 on (smaller ones are counts,
    steps and labels); not a year."""
    value = _decimal(token)
    if value is None or "e" in token:
        return False
    digits = re.sub(r"\D", "", token).lstrip("0")
    if "." not in token:
        return abs(value) >= 100 and not 1900 <= value <= 2100
    return len(digits) >= 2


def printed_values(outputs: str) -> list[str]:
    """Every number in the outputs; for 8.11e+06 also its mantissa, 8.11 (the prose
    writes 8.11 × 10^6). Minus signs are written ``-`` (a table may print ``−0.040``)."""
    tokens = [t.replace("−", "-") for t in NUMBER.findall(outputs)]
    return tokens + [t.split("e")[0] for t in tokens if "e" in t]


def matched_by(token: str, printed: list[str]) -> list[str]:
    """The printed numbers ``token`` quotes: each that, rounded to the token's decimals
    (half up or half even), equals it; times 100 when the token is a percentage
    (``95.18%`` for a printed 0.9518). A token written with a minus sign needs a
    negative number; one without may quote a magnitude (the prose's "by 0.038")."""
    percent = token.endswith("%")
    target = _decimal(token.rstrip("%"))
    if target is None:
        return []
    places = Decimal(1).scaleb(-len(token.rstrip("%").split(".")[1])) if "." in token else Decimal(1)
    signed = target < 0
    found = []
    for p in printed:
        value = _decimal(p)
        if value is None:
            continue
        candidates = (value, value * 100) if percent and abs(value) <= 1 else (value,)
        for candidate in candidates:
            try:
                rounded = {candidate.quantize(places, rounding=r) for r in (ROUND_HALF_UP, ROUND_HALF_EVEN)}
            except InvalidOperation:  # more digits than the context holds: not this one
                continue
            if (target in rounded) if signed else (abs(target) in {abs(r) for r in rounded}):
                found.append(p)
                break
    return found


def matches(token: str, printed: list[str]) -> bool:
    return bool(matched_by(token, printed))


def chapter_pages(build: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted((build / "chapters").glob("*.html"))}


def read_page(page: Path) -> tuple[dict[str, str], list[str]]:
    """({each quotable prose number: the paragraph it first appears in}, every number the
    page's outputs print) of one built chapter page. A prose number followed by % keeps
    it (``95.18%``); minus signs are written ``-``."""
    paragraphs, outputs = page_text(page.read_text(encoding="utf-8"))
    quoted = {}
    for paragraph in paragraphs:
        for match in NUMBER.finditer(paragraph):
            token = match.group().replace("−", "-")
            if quotable(token):
                percent = paragraph[match.end():match.end() + 2].lstrip(" ").startswith("%")
                quoted.setdefault(token + "%" * percent, paragraph)
    return quoted, printed_values(outputs)


def quoted_and_printed(page: Path) -> dict[str, list[str]]:
    """{prose number: the printed numbers it quotes}, for the prose numbers this page prints."""
    quoted, printed = read_page(page)
    found = {t: sorted(set(matched_by(t, printed))) for t in quoted}
    return {t: m for t, m in found.items() if m}


def snapshot(builds: list[Path]) -> dict[str, dict[str, list[str]]]:
    """{chapter: {prose number: the printed numbers it quotes in every build}}."""
    pages = [chapter_pages(build) for build in builds]
    taken = {}
    for chapter in pages[0]:
        each = [quoted_and_printed(found[chapter]) for found in pages]
        numbers = {}
        for token, printed in each[0].items():
            common = set(printed).intersection(*(set(other.get(token, ())) for other in each[1:]))
            if common:
                numbers[token] = sorted(common)
        taken[chapter] = dict(sorted(numbers.items(), key=lambda kv: (float(_decimal(kv[0].rstrip("%"))), kv[0])))
    return taken


def _sentence(paragraph: str, token: str) -> str:
    paragraph = paragraph.replace("−", "-")
    at = paragraph.find(token)
    return paragraph[max(0, at - 70): at + len(token) + 40]


def check(build: Path, taken: dict[str, dict[str, list[str]]]) -> dict[str, list[str]]:
    """{chapter: a line for each snapshot number its prose no longer quotes, or whose
    printed numbers its page no longer prints (each with its sentence)}."""
    problems = {}
    pages = chapter_pages(build)
    for chapter, numbers in taken.items():
        if chapter not in pages:
            problems[chapter] = [f"no page {build / 'chapters' / chapter}.html in this build"]
            continue
        quoted, printed = read_page(pages[chapter])
        lines = []
        for token, was_printed in numbers.items():
            if token not in quoted:
                lines.append(f"{token}: no longer in the prose (take the snapshot again)")
            elif not set(was_printed) & set(printed):
                lines.append(f"{token}: …{_sentence(quoted[token], token.rstrip('%'))}… "
                             f"(the page printed {', '.join(was_printed)}; no longer)")
        if lines:
            problems[chapter] = lines
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    snap = sub.add_parser("snapshot")
    snap.add_argument("builds", nargs="*", type=Path, default=[HTML])
    chk = sub.add_parser("check")
    chk.add_argument("build", nargs="?", type=Path, default=HTML)
    unmatched = sub.add_parser("unmatched")
    unmatched.add_argument("chapter")
    unmatched.add_argument("--build", type=Path, default=HTML)
    args = parser.parse_args(argv)
    builds = args.builds if args.command == "snapshot" else [args.build]
    pages = [chapter_pages(build) for build in builds]
    for build, found in zip(builds, pages):
        if not found:
            parser.error(f"argument BUILD: {build} holds no chapters/*.html (build the book first: make book)")
        if found.keys() != pages[0].keys():
            parser.error(f"argument BUILD: {build} holds other chapters than {builds[0]}")
    if args.command == "unmatched" and args.chapter not in pages[0]:
        parser.error(f"argument CHAPTER: {args.chapter!r} is not a chapter page of {args.build}; "
                     f"one of {', '.join(pages[0])}")
    if args.command == "snapshot":
        taken = snapshot(builds)
        SNAPSHOT.write_text(json.dumps(taken, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{SNAPSHOT.relative_to(ROOT)}: {sum(map(len, taken.values()))} numbers, "
              f"{len(taken)} chapters")
        return 0
    if args.command == "check":
        recorded = json.loads(SNAPSHOT.read_text(encoding="utf-8"))  # (not `snapshot`: the function above)
        problems = check(args.build, recorded)
        for chapter, lines in problems.items():
            print(chapter, *lines, sep="\n  ")
        if not problems:  # (silence read as "did it run?")
            print(f"{args.build}: all {sum(map(len, recorded.values()))} prose numbers of "
                  f"{len(recorded)} chapters still quoted and printed")
        return 1 if problems else 0
    quoted, printed = read_page(pages[0][args.chapter])
    for token, paragraph in quoted.items():
        if not matches(token, printed):
            print(f"{token}: …{_sentence(paragraph, token.rstrip('%'))}…")
    return 0


if __name__ == "__main__":
    sys.exit(main())
