"""Measured results the chapters show (benchmarks, the Table 2 reproduction), as package data.

Each ``NAME.json`` in this folder was written by one command, recorded in its
``"command"`` field (``benchmarks/throughput.py``, ``benchmarks/memory.py``,
``benchmarks/book_time.py``, ``python -m mamlbook reproduce --results ...``). The
chapters read them with `load`, so they run the same from a clone, from any working
directory, and from an installed wheel.
"""
from __future__ import annotations

import difflib
import json
from pathlib import Path

#: The folder holding the results (benchmark scripts write here by default).
FOLDER = Path(__file__).resolve().parent


def names() -> list[str]:
    """The names of the shipped results, e.g. ``["book_time", "memory", ...]``."""
    return sorted(p.stem for p in FOLDER.glob("*.json"))


def path(name: str) -> Path:
    """Where the result ``name`` lives (``FOLDER / f"{name}.json"``)."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name:
        raise ValueError(f"name must be a result name such as 'memory', got {name!r}")
    return FOLDER / f"{name}.json"


def load(name: str) -> dict:
    """The shipped result ``name`` (see `names`) as a dict."""
    file = path(name)
    if not file.is_file():
        close = difflib.get_close_matches(name, names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"name must be one of {names()}, got {name!r}{hint}")
    return json.loads(file.read_text())
