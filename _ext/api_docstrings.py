"""The package's docstrings in the API reference page (``api.md``).

The docstrings follow one plain convention, readable in ``help()``::

    Parameters
    ----------
    name : what it is, ``shape`` and range,
        continued on indented lines.

numpydoc/napoleon would read the text after ``name :`` as a *type*; this hook turns
each section title into a rubric and each entry into a definition-list item instead.
"""
from __future__ import annotations

import re

_TITLE = re.compile(r"^(\s*)(Parameters|Returns|Yields|Raises|Example|Examples|Notes|Attributes)\s*$")
_RULE = re.compile(r"^\s*-{3,}\s*$")
_ENTRY = re.compile(r"^(\s*)([A-Za-z_*][\w*, ]*?) : (.*)$")


def rewrite(lines: list[str]) -> list[str]:
    out: list[str] = []
    in_section = False
    i = 0
    while i < len(lines):
        line = lines[i]
        title = _TITLE.match(line)
        if title and i + 1 < len(lines) and _RULE.match(lines[i + 1]):
            out += [f"{title.group(1)}.. rubric:: {title.group(2)}", ""]
            in_section = title.group(2) in ("Parameters", "Attributes", "Raises")
            i += 2
            continue
        entry = _ENTRY.match(line) if in_section else None
        if entry:
            indent, names, text = entry.groups()
            if out and out[-1].strip():
                out.append("")
            out += [f"{indent}``{names.strip()}``", f"{indent}    {text}"]
        else:
            if not line.strip():
                in_section = in_section and i + 1 < len(lines) and bool(_ENTRY.match(lines[i + 1] or ""))
            out.append(line)
        i += 1
    return out


def process(app, what, name, obj, options, lines) -> None:
    lines[:] = rewrite(lines)


def setup(app):
    app.connect("autodoc-process-docstring", process)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
