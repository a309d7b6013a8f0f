"""References to numbered equations are links to them: "eq. (5.1)" goes to eq. (5.1).

The chapters number their displayed equations by hand (``\\tag{5.1}`` in the formula) and
refer to them in words ("eq. (5.1)", "Eq. (5.1)", "(eq. 5.1)", "eqs. (5.5) and (5.6)",
"eqs. 2.2-2.4"), so the same text reads alike in the book, in JupyterLab and in a
handout. In the HTML book:

* each display formula with ``\\tag{N.M}`` gets the anchor ``eq-N-M`` (``eq-5-1``);
* in running text (not in code, formulas or headings), each such reference is a link to
  its formula, on the same page or on another chapter's;
* a reference to a number that no formula of the book carries is a build warning (an
  error under ``-W``): a renumbered or deleted equation cannot leave a dangling "eq.".

Links are resolved when pages are written, from the numbers of every page read. The book
is always built with ``--all`` (Makefile), so a renumbered formula relinks every page; an
incremental build would rewrite only the pages that changed.
"""
from __future__ import annotations

import re

from docutils import nodes

TAG = re.compile(r"\\tag\{([0-9A-Z]+\.[0-9]+)\}")
# a number: (5.1) or 5.1; a reference: "eq. (5.1)", "Eq. (5.1)", "(eq. 5.1)", "eqs. (5.5) and (5.6)",
# "eqs. (5.5), (5.6) and (5.7)", "eqs. 2.2-2.4", "eqs. (3.2)–(3.4)", "eqs. 10.2, 10.3"
_NUMBER = r"(?:\([0-9A-Z]+\.[0-9]+\)|[0-9A-Z]+\.[0-9]+)"
_SEPARATOR = r"(?:,\s+and\s+|,\s+|\s+and\s+|\s*[–-]\s*|\s+to\s+)"
REFERENCE = re.compile(rf"\b[Ee]qs?\.\s+{_NUMBER}(?:{_SEPARATOR}{_NUMBER})*(?![\w.]*\d)")
NUMBER = re.compile(r"\(?([0-9A-Z]+\.[0-9]+)\)?")
# text under these is left alone: code, formulas, existing links, headings, captions of code
SKIP = (nodes.literal, nodes.literal_block, nodes.math, nodes.math_block, nodes.reference, nodes.title,
        nodes.raw, nodes.FixedTextElement)


def anchor(number: str) -> str:
    return "eq-" + number.replace(".", "-")


def collect_tags(app, doctree) -> None:
    """Anchor every tagged display formula of the page and record where each number lives."""
    env = app.env
    tags = env.__dict__.setdefault("mamlbook_equation_tags", {})
    seen = set()  # this page's numbers (a number tagged twice on one page would give two equal ids)
    for block in doctree.findall(nodes.math_block):
        for number in TAG.findall(block.astext()):
            if number in seen or tags.get(number, env.docname) != env.docname:
                raise ValueError(f"equation ({number}) is tagged twice: in {tags.get(number, env.docname)} "
                                 f"and in {env.docname}")
            seen.add(number)
            tags[number] = env.docname
            block["ids"].append(anchor(number))


def purge(app, env, docname) -> None:
    tags = env.__dict__.get("mamlbook_equation_tags", {})
    for number in [n for n, d in tags.items() if d == docname]:
        del tags[number]


def merge(app, env, docnames, other) -> None:
    """A parallel reader's numbers into the main environment (a number tagged twice is an error here too)."""
    tags = env.__dict__.setdefault("mamlbook_equation_tags", {})
    for number, docname in other.__dict__.get("mamlbook_equation_tags", {}).items():
        if docname not in docnames:
            continue
        if tags.get(number, docname) != docname:
            raise ValueError(f"equation ({number}) is tagged twice: in {tags[number]} and in {docname}")
        tags[number] = docname


def _skipped(node) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, SKIP):
            return True
        parent = parent.parent
    return False


def _merge_adjacent_text(doctree) -> None:
    """Join runs of sibling Text nodes into one (the same text; a reference can then span them)."""
    for element in list(doctree.findall(nodes.TextElement)):
        children, merged = element.children, []
        if sum(isinstance(c, nodes.Text) for c in children) < 2:
            continue
        for child in children:
            if isinstance(child, nodes.Text) and merged and isinstance(merged[-1], nodes.Text):
                merged[-1] = nodes.Text(str(merged[-1]) + str(child))
            else:
                merged.append(child)
        if len(merged) != len(children):
            element.clear()
            element.extend(merged)


def link_references(app, doctree, docname) -> None:
    """Turn "eq. (N.M)" in the page's running text into links to the formula."""
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    tags = app.env.__dict__.get("mamlbook_equation_tags", {})
    _merge_adjacent_text(doctree)  # MyST makes a line break its own node: "eq." | "\n" | "5.1)"
    for text in list(doctree.findall(nodes.Text)):
        if not REFERENCE.search(text) or _skipped(text):
            continue
        pieces, last = [], 0
        for ref in REFERENCE.finditer(text):
            for i, number in enumerate(NUMBER.finditer(ref.group(0))):
                # the first number's link includes "eq." ("eq. (5.1)" is one link)
                start = ref.start() + (0 if i == 0 else number.start())
                end = ref.start() + number.end()
                target = tags.get(number.group(1))
                if target is None:
                    logger.warning(f"eq. ({number.group(1)}) is referred to, but no formula of the book is "
                                   f"tagged \\tag{{{number.group(1)}}}", location=text.parent)
                    continue
                pieces.append(nodes.Text(text[last:start]))
                uri = "" if target == docname else app.builder.get_relative_uri(docname, target)
                link = nodes.reference("", "", nodes.Text(text[start:end]), internal=True,
                                       refuri=f"{uri}#{anchor(number.group(1))}", classes=["equation-link"])
                pieces.append(link)
                last = end
        if not pieces:
            continue
        pieces.append(nodes.Text(text[last:]))
        text.parent.replace(text, [p for p in pieces if not isinstance(p, nodes.Text) or str(p)])


def setup(app):
    app.connect("doctree-read", collect_tags)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("doctree-resolved", link_references)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
