"""Where benchmark results go, and how they are written (shared by the benchmark scripts)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

# The results ship with the package (the chapters read them with mamlbook.results.load).
RESULTS = Path(__file__).resolve().parents[1] / "mamlbook" / "results"


def write(results: dict, out: Path, plot: Callable[[dict, Path], None], script: str, argv: list[str] | None) -> None:
    """Record the command, write ``out`` (JSON) and its plot beside it (``out`` with .png)."""
    results["command"] = f"python benchmarks/{script} " + " ".join(sys.argv[1:] if argv is None else argv)
    write_json(results, out)
    plot(results, out.with_suffix(".png"))
    print(f"\nwrote {out} and {out.with_suffix('.png')}")


def write_json(results: dict, out: str | Path) -> None:
    """Write ``results`` to ``out`` (JSON, indent 1), creating its folder; scripts that write
    after every row call it again, so an interrupted run keeps what it measured."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
