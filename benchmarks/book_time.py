"""How long the book takes to execute: every chapter under nbval, per chapter and in total.

Runs ``pytest --nbval-lax`` on the chapters (each notebook in its own kernel, every
cell executed, as in ``make nbval``) with a JUnit XML report, and sums the time of each
notebook's cells (kernel start-up is counted in its first cell). Failures are recorded,
not hidden: a chapter that fails is listed with its failing cells.

Run (a few minutes: it executes the whole book)::

    .venv/bin/python benchmarks/book_time.py            # writes mamlbook/results/book_time.json
    .venv/bin/python benchmarks/book_time.py chapters/02_maml.ipynb
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import torch

from mamlbook.device import cpu_name

ROOT = Path(__file__).resolve().parent.parent
from _results import RESULTS


def run_nbval(notebooks: list[str]) -> tuple[dict, float, int, str]:
    """Execute the notebooks under nbval; per-notebook seconds, cells and failures."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider", "--durations=0",
               f"--junitxml={report}", "-o", "junit_duration_report=total", *notebooks]
        env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        per = defaultdict(lambda: {"seconds": 0.0, "cells": 0, "failed_cells": []})
        if report.is_file():
            for case in ET.parse(report).getroot().iter("testcase"):
                notebook = case.get("classname", "")  # "chapters.02_maml.ipynb"
                if notebook.endswith(".ipynb"):
                    notebook = notebook[:-len(".ipynb")].replace(".", "/") + ".ipynb"
                entry = per[notebook]
                entry["seconds"] += float(case.get("time", 0.0))
                entry["cells"] += 1
                if case.find("failure") is not None or case.find("error") is not None:
                    entry["failed_cells"].append(case.get("name"))
    return dict(per), wall, proc.returncode, proc.stdout[-3000:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", help="default: every chapters/*.ipynb")
    parser.add_argument("--out", default=str(RESULTS / "book_time.json"))
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "chapters").glob("*.ipynb"))
    load_before = os.getloadavg()
    per, wall, rc, tail = run_nbval(notebooks)
    chapters = {}
    for nb in notebooks:
        entry = per.get(nb) or next((v for k, v in per.items() if k.endswith(Path(nb).name)), None)
        if entry is None:
            chapters[nb] = {"seconds": None, "cells": 0, "status": "not run"}
            continue
        chapters[nb] = {"seconds": round(entry["seconds"], 2), "cells": entry["cells"],
                        "status": "failed" if entry["failed_cells"] else "passed",
                        "failed_cells": entry["failed_cells"]}
    total = sum(c["seconds"] or 0.0 for c in chapters.values())
    results = {"chapters": chapters, "total_seconds": round(total, 2), "pytest_wall_seconds": round(wall, 2),
               "pytest_returncode": rc, "torch": torch.__version__, "cpu": cpu_name(), "cores": os.cpu_count(),
               "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
               "date": time.strftime("%Y-%m-%d %H:%M"),
               "command": "python benchmarks/book_time.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    print(f"{'chapter':<42}{'cells':>6}{'seconds':>10}  status")
    for nb, c in chapters.items():
        sec = f"{c['seconds']:.1f}" if c["seconds"] is not None else "-"
        print(f"{nb:<42}{c['cells']:>6}{sec:>10}  {c['status']}")
    print(f"{'total':<42}{'':>6}{total:>10.1f}  (pytest wall time {wall:.1f} s, exit code {rc})")
    if rc != 0:
        print(tail)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
