"""The numbers a chapter's prose quotes from its outputs are still printed on its page.

`prose_numbers.json` (made by ``python tools/prose_numbers.py snapshot``) lists, per
chapter, the numbers its prose quoted that the built page printed when it was taken,
with the printed numbers each one matched. The prose must still quote each of them, and
the page still print one of its printed numbers as written then: a retrained
checkpoint, a changed seed or recipe that moves an output fails here, naming the
sentence; a sentence rewritten fails too, until the snapshot is taken again (which also
keeps the check from passing unseen if the page's text stopped being read).
``tools/prose_numbers.py unmatched CHAPTER`` lists the prose numbers no output prints,
to review by hand.
"""

from __future__ import annotations

import json

import browsing  # (which puts tools/ on the import path)
import prose_numbers
import pytest

SNAPSHOT = json.loads(prose_numbers.SNAPSHOT.read_text(encoding="utf-8"))
# like every test of the built book: skipped until there is one (make book)
pytestmark = pytest.mark.skipif(not browsing.HTML.is_dir(),
                                reason=f"{browsing.HTML} does not exist: build the book first (make book)")


def test_the_snapshot_covers_every_chapter_page():
    assert sorted(SNAPSHOT) == sorted(prose_numbers.chapter_pages(browsing.HTML))


@pytest.mark.parametrize("chapter", sorted(SNAPSHOT))
def test_prose_numbers_are_still_printed_on_their_page(chapter):
    problems = prose_numbers.check(browsing.HTML, {chapter: SNAPSHOT[chapter]})
    assert not problems, (
        "the prose and its page's outputs have parted (update the prose to the new "
        "outputs, then take the snapshot again: python tools/prose_numbers.py snapshot):\n  "
        + "\n  ".join(problems[chapter])
    )
