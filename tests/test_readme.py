"""The README's Python examples run as written (with a short training run)."""
import re
from pathlib import Path


def test_readme_examples_run(tmp_path, monkeypatch):
    text = (Path(__file__).parents[1] / "README.md").read_text()
    code = "\n".join(re.findall(r"```python\n(.*?)```", text, re.S))
    assert "get_method(\"imaml\")" in code and "get_method(\"reptile\")" in code
    code = code.replace("iterations=70_000", "iterations=20")
    monkeypatch.chdir(tmp_path)  # the example saves a checkpoint in the working directory
    # the example registers a method ("Adding a method"): in a copy of the registry, which
    # the package gets back after the test
    from mamlbook.algorithms import base

    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert set(namespace["step"].grads) == set(namespace["theta"])
    assert (tmp_path / "maml.pt").is_file()
    assert "boil" in base._REGISTRY and namespace["history"].meta_loss  # it trained with the new method
