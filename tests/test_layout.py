"""The layout explains the architecture: no import cycle, every module documented and
listed in the README's layout, each readable in one sitting; the speed path is opt-in."""
import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from module_map import PACKAGE, find_cycle, import_graph  # noqa: E402

MODULES = sorted(import_graph())


def test_the_import_graph_has_no_cycle():
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", MODULES)
def test_every_module_has_a_docstring_and_fits_one_sitting(name):
    path = PACKAGE.parent / (name.replace(".", "/") + ".py")
    if not path.is_file():
        path = PACKAGE.parent / name.replace(".", "/") / "__init__.py"
    source = path.read_text()
    assert ast.get_docstring(ast.parse(source)), f"{name} has no module docstring"
    assert len(source.splitlines()) <= 600, f"{name}: {len(source.splitlines())} lines"


def test_the_readme_layout_names_every_module():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):readme.index("## Using the package")]
    missing = []
    for name in MODULES:
        parts = name.split(".")[1:]
        if not parts or parts[-1].startswith("_"):
            continue  # the package itself, private helpers
        top = parts[0]
        shown = f"{top}.py" in layout or f"{top}/" in layout
        if len(parts) > 1 and top not in ("tasks", "demos"):  # subpackages name their files
            shown = shown and f"{parts[-1]}.py" in layout
        if not shown:
            missing.append(name)
    assert not missing, f"README layout does not list {missing}"


def test_the_speed_path_is_opt_in():
    """The files students read (functional, hessian, algorithms/*) never import the speed
    path (mamlbook.performance); train.py imports it only when compile=True is asked for,
    so importing the package and training eagerly leaves it unloaded."""
    graph = import_graph()
    students_read = ["mamlbook.functional", "mamlbook.hessian", *[m for m in graph if m.startswith("mamlbook.algorithms")]]
    for name in students_read:
        assert not [d for d in graph[name] if d.startswith("mamlbook.performance")], name
    code = ("import sys, torch, mamlbook as mb\n"
            "model = mb.SinusoidMLP()\n"
            "mb.meta_train(model, mb.SinusoidTasks(), iterations=1, generator=torch.Generator(), progress=False)\n"
            "mb.recipes.RECIPES, mb.protocol.sinusoid_test_tasks(2)\n"
            "loaded = [m for m in sys.modules if m.startswith('mamlbook.performance')]\n"
            "assert not loaded, loaded\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("name", ["mamlbook.protocol", "mamlbook.recipes", "mamlbook.performance.distributed",
                                  "mamlbook.measure", "mamlbook.cli"])
def test_a_module_imports_on_its_own(name):
    """In a fresh interpreter, so that no earlier import hides a missing one."""
    subprocess.run([sys.executable, "-c", f"import {name}"], check=True, cwd=ROOT)
    assert importlib.import_module(name)
