"""What every HTML page of the book loads: only the scripts it uses.

* MathJax (1.3 MB) only on pages with math of their own. Sphinx counts a page as having
  math when any page in its toctree does, so the front page, which lists every
  chapter, loaded MathJax without a single formula.
* No Thebe. Jupyter Book always adds sphinx-thebe, whose configuration script declares
  ``const THEBE_JS_URL`` and was added twice to every page, so every page threw
  "Identifier 'THEBE_JS_URL' has already been declared". The book does not offer
  Thebe (live code in the page needs a kernel server and internet); the launch buttons
  open Binder/Colab instead. Both of its scripts are removed.
* The search page has no math of its own, but its results quote the pages' text,
  formulas as TeX: it loads MathJax and ``_assets/search_math.js``, which typesets each
  result's summary as it appears.
"""
from __future__ import annotations


def _script_name(script) -> str:
    return str(getattr(script, "filename", script) or "")


def _script_body(script) -> str:
    return str(getattr(script, "attributes", {}).get("body", "") or "")


def prune_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    own_math = bool(app.env.get_domain("math").data["has_equations"].get(pagename))
    mathjax = str(app.config.mathjax_path or "")

    def wanted(script) -> bool:
        name, body = _script_name(script), _script_body(script)
        if "THEBE_JS_URL" in body or name.endswith("sphinx-thebe.js"):
            return False
        if not own_math and ((mathjax and name.endswith(mathjax)) or body.startswith("window.MathJax")):
            return False
        return True

    scripts[:] = [s for s in scripts if wanted(s)]
    if pagename == "search" and mathjax:  # the results quote formulas as TeX: typeset them
        app.add_js_file(mathjax, loading_method="defer")
        app.add_js_file("search_math.js", loading_method="defer")


def setup(app):
    # After sphinx.ext.mathjax (priority 500) has added MathJax to the page.
    app.connect("html-page-context", prune_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
