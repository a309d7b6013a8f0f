"""Every docstring the API page (api.md) shows parses as reStructuredText without a
warning, after the book's own rewrite of its sections (_ext/api_docstrings.py): the
strict book build (-W) fails on one, minutes later than this test."""
import importlib
import inspect
import io
import re
import sys
from pathlib import Path

import docutils.core
import docutils.utils
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))
from api_docstrings import rewrite  # noqa: E402

MODULES = re.findall(r"\.\. automodule:: (\S+)", (ROOT / "api.md").read_text())


def _documented(module):
    yield module.__name__, module.__doc__
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield f"{module.__name__}.{name}", obj.__doc__
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and (inspect.isfunction(member) or isinstance(member, property)):
                    yield f"{module.__name__}.{name}.{attr}", member.__doc__


@pytest.mark.parametrize("module_name", MODULES)
def test_docstrings_parse_without_warnings(module_name):
    module = importlib.import_module(module_name)
    problems = []
    for where, doc in _documented(module):
        if not doc:
            continue
        text = "\n".join(rewrite(inspect.cleandoc(doc).splitlines()))
        stream = io.StringIO()  # docutils reports parse and transform problems here
        settings = {"report_level": docutils.utils.Reporter.WARNING_LEVEL, "halt_level": 5,
                    "warning_stream": stream}
        docutils.core.publish_doctree(text, settings_overrides=settings)
        problems += [f"{where}: {line}" for line in stream.getvalue().splitlines() if "(WARNING" in line
                     or "(ERROR" in line or "(SEVERE" in line]
    assert not problems, "\n".join(problems)
