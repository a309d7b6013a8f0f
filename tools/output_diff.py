"""The text outputs that differ between two executed copies of a notebook (numbers on a page, before and after).

    python tools/output_diff.py BEFORE.ipynb AFTER.ipynb

Streams, plain-text results, Markdown and the cells of HTML tables, as unified-diff lines.
"""

import json, sys, difflib, re


def texts(path):
    nb = json.load(open(path))
    out = []
    for c in nb["cells"]:
        if c["cell_type"] != "code":
            continue
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stdout":
                out += "".join(o["text"]).splitlines()
            elif (
                "data" in o
                and "text/plain" in o["data"]
                and "image/svg+xml" not in o["data"]
                and "text/html" not in o["data"]
            ):
                out += "".join(o["data"]["text/plain"]).splitlines()
            elif "data" in o and "text/markdown" in o["data"]:
                out += "".join(o["data"]["text/markdown"]).splitlines()
            elif "data" in o and "text/html" in o["data"]:
                html = "".join(o["data"]["text/html"])
                if "<table" in html:
                    out += [
                        re.sub(r"<[^>]+>", " ", l).strip()
                        for l in html.splitlines()
                        if re.sub(r"<[^>]+>", "", l).strip()
                    ]
    return out


a, b = texts(sys.argv[1]), texts(sys.argv[2])
for line in difflib.unified_diff(a, b, lineterm="", n=0):
    print(line)
