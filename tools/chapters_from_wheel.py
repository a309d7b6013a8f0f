"""Every chapter, executed against the package installed from its wheel, elsewhere.

What a student gets from ``pip install`` is the wheel, not the checkout: this builds
the wheel, installs it (without dependencies: they are this environment's) into a fresh
folder, copies the chapters into an unrelated working directory and executes each one
there with that folder first on the kernel's path. A chapter that reads a file through
the checkout (``benchmarks/...``, a path relative to the working directory) fails here.

    .venv/bin/python tools/chapters_from_wheel.py [--keep DIR] [CHAPTER ...]

Prints one line per chapter (pass/fail, seconds) and exits 1 if any fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]

CHECK = """import mamlbook, pathlib
assert pathlib.Path(mamlbook.__file__).is_relative_to(pathlib.Path({site!r})), mamlbook.__file__
"""


PIP = [sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check"]


def build_wheel(dest: Path) -> Path:
    """The package's wheel, built from the checkout into ``dest``; its path."""
    subprocess.run(
        [
            *PIP,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dest),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = dest.glob("mamlbook-*.whl")
    return wheel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("chapters", nargs="*", help="chapter files (default: all)")
    parser.add_argument(
        "--keep",
        type=Path,
        help="work in this folder and keep it (default: a temporary one)",
    )
    args = parser.parse_args(argv)
    chapters = [Path(c).resolve() for c in args.chapters] or sorted(
        (ROOT / "chapters").glob("*.ipynb")
    )
    base = args.keep or Path(tempfile.mkdtemp(prefix="mamlbook-wheel-"))
    dist, site, work = base / "dist", base / "site", base / "elsewhere"
    for d in (dist, site, work):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    wheel = build_wheel(dist)
    subprocess.run(
        [*PIP, "install", "--no-deps", "--target", str(site), str(wheel)], check=True
    )
    print(f"installed {wheel.name} into {site}; executing chapters in {work}")

    # The kernel inherits this environment: the installed wheel comes first on its path.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(site), os.environ.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    failures = 0
    for chapter in chapters:
        nb = nbformat.read(chapter, as_version=4)
        nb.cells.insert(0, nbformat.v4.new_code_cell(CHECK.format(site=str(site))))
        start = time.perf_counter()
        try:
            NotebookClient(
                nb,
                timeout=600,
                kernel_name="python3",
                resources={"metadata": {"path": str(work)}},
            ).execute()
            status = "pass"
        except Exception as err:  # report every chapter, then fail
            failures += 1
            status = (
                f"FAIL: {type(err).__name__}: {str(err).strip().splitlines()[-1][:200]}"
            )
        print(
            f"{chapter.name:<28} {time.perf_counter() - start:6.1f} s  {status}",
            flush=True,
        )
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
