"""Sort the bad-input catalogue of `test_bad_inputs.py` into clear / obscure / silent.

    PYTHONPATH=<package root> python tests/classify_bad_inputs.py [--verbose]

* clear: the call raised the catalogue's exception type (or, for `CheckpointError`
  before it existed, a ValueError) with the argument named in the message, raised by
  the package or by Python's own argument binding, not from inside torch;
* obscure: it raised something else (a torch error, a KeyError, a message that does
  not name the argument);
* silent: it returned (possibly with only a warning).

Run it against another checkout of the package (e.g. the code before issue 17) by
pointing PYTHONPATH there; the catalogue itself only uses arguments that existed then.
"""
from __future__ import annotations

import sys
import tempfile
import traceback
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import mamlbook  # noqa: E402
import test_bad_inputs as catalogue  # noqa: E402


def classify(case) -> tuple[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        c = catalogue.make_ctx(Path(tmp))
        try:
            thunk = case.make(c)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                thunk()
        except Exception as err:  # noqa: BLE001 (classifying every outcome is the point)
            frames = traceback.extract_tb(err.__traceback__)
            where = frames[-1].filename if frames else ""
            inside_library = "site-packages" in where or "/torch/" in where
            expected = case.error
            if expected is catalogue.CheckpointError and not hasattr(mamlbook, "CheckpointError"):
                expected = ValueError
            if isinstance(err, expected) and case.word in str(err) and not inside_library:
                return "clear", f"{type(err).__name__}: {str(err)[:150]}"
            return "obscure", f"{type(err).__name__} at {Path(where).name}: {str(err)[:150]}"
        return "silent", "returned"


def main() -> int:
    verbose = "--verbose" in sys.argv
    print(f"mamlbook from {mamlbook.__file__}; {len(catalogue.CASES)} cases")
    counts = Counter()
    for case in catalogue.CASES:
        kind, detail = classify(case)
        counts[kind] += 1
        if verbose or kind != "clear":
            print(f"{kind:8s} {case.id}: {detail}")
    print(f"clear {counts['clear']}, obscure {counts['obscure']}, silent {counts['silent']} (of {len(catalogue.CASES)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
