"""The seven static demos in headless Chromium, offline, without a kernel or a book build.

A throwaway page holds every demo's ``static()`` HTML (and a second curvature demo, so
two instances of one demo share the page), served on 127.0.0.1. In Chromium (Playwright,
the system browser; helpers in ``browsing.py``) the test checks, per demo, that

* the page raised no JavaScript exception and requested nothing but itself (any request
  off this machine is aborted; after every test, none may have been tried and no
  exception thrown);
* the numbers the page computed (``root.mbLast``) equal the Python functions' at the
  default controls, and again after a control was moved (for the analytic demos, the
  landscape and the playground, whose networks are fine-tuned in the page); the Omniglot
  game is played with real mouse clicks on its canvas and its buttons;
* moving a control (setting an ``<input type=range>`` and dispatching ``input``)
  changes the canvas pixels, and leaves the other demos' canvases alone.

It writes ``_build/screenshots/static_demos.png``. Needs Chromium (``tools/install_chromium.sh``).
"""
from __future__ import annotations

import json

import pytest
import torch

from browsing import REPO, new_page, serve

from mamlbook import checkpoints
from mamlbook.demos import (curvature, directions, imaml_lambda, landscape, omniglot_game, reptile_interpolation,
                            sinusoid_playground)

SHOT = REPO / "_build" / "screenshots" / "static_demos.png"
MODULES = {"curvature": curvature, "sinusoid_playground": sinusoid_playground, "landscape": landscape,
           "reptile_interpolation": reptile_interpolation, "imaml_lambda": imaml_lambda, "directions": directions,
           "omniglot_game": omniglot_game}


def have_checkpoints() -> bool:
    return all((checkpoints.PRETRAINED_DIR / f"{r}.pt").is_file() for r in sinusoid_playground.RECIPES.values())


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    demos, failed = {}, {}
    for name, mod in MODULES.items():
        if name == "sinusoid_playground" and not have_checkpoints():
            continue
        try:
            demos[name] = mod.static()
        except Exception as err:  # reported by that demo's test; the others still run
            failed[name] = err
    demos["curvature_twin"] = curvature.static(a=-0.2)
    body = "".join(f"<h2>{name}</h2>{d._repr_html_()}" for name, d in demos.items())
    folder = tmp_path_factory.mktemp("static_demos")
    head = "<meta charset='utf-8'><meta name='viewport' content='width=device-width'><title>static demos</title>"
    (folder / "demos.html").write_text(f"<!doctype html><html><head>{head}</head><body>{body}</body></html>")
    with serve(folder) as base:
        context, tab, guard = new_page(browser, width=900, height=4200)
        try:
            url = f"{base}/demos.html"
            tab.goto(url)
            SHOT.parent.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=SHOT, full_page=True)
            yield {"demos": demos, "failed": failed, "evaluate": tab.evaluate, "guard": guard, "url": url, "tab": tab}
        finally:
            context.close()


@pytest.fixture(autouse=True)
def stays_offline_without_errors(page):
    """After each test: nothing off this machine was tried, no JavaScript exception."""
    yield
    problems = page["guard"].problems()
    assert not problems, "\n".join(problems)


def state(page, name: str) -> dict:
    """Canvas pixels (as a data URL), readout and ``mbLast`` of one demo."""
    root = json.dumps(page["demos"][name].root_id)
    return page["evaluate"](f"""(() => {{ const r = document.getElementById({root});
        return {{png: r.querySelector('canvas').toDataURL(), text: r.querySelector('.mbd-read').textContent,
                 last: r.mbLast || null}}; }})()""")


def move(page, name: str, control: str, value) -> dict:
    """Set a slider like a reader would (value + ``input`` event); return the demo's new state."""
    root = json.dumps(page["demos"][name].root_id)
    page["evaluate"](f"""(() => {{ const el = document.getElementById({root}).querySelector('input[data-name="{control}"]');
        el.value = {json.dumps(str(value))}; el.dispatchEvent(new Event('input', {{bubbles: true}})); }})()""")
    return state(page, name)


def close(js, py, tol=1e-6):
    return torch.allclose(torch.tensor(js, dtype=torch.float64), torch.as_tensor(py, dtype=torch.float64), atol=tol, rtol=0)


def test_page_loads_offline_without_errors(page):
    guard = page["guard"]
    assert not guard.page_errors, guard.page_errors
    urls = {r.url for r in guard.requests}
    assert not guard.blocked and all(u == page["url"] or u.startswith(("data:", "blob:")) for u in urls), urls
    for name in page["demos"]:
        s = state(page, name)
        assert s["last"] is not None and s["text"], f"{name} did not draw"
    assert SHOT.stat().st_size > 10_000


def test_curvature(page):
    s = state(page, "curvature")
    d = curvature.field()
    assert close([s["last"][k] for k in ("mean_angle", "max_angle", "rel_error", "bound")],
                 [d["mean_angle"], d["max_angle"], d["rel_error"], d["bound"]])
    twin = state(page, "curvature_twin")
    moved = move(page, "curvature", "b", 0.3)
    assert moved["png"] != s["png"] and state(page, "curvature_twin") == twin   # the other instance is untouched
    d = curvature.field(b=0.3)
    assert close([moved["last"]["mean_angle"], moved["last"]["rel_error"]], [d["mean_angle"], d["rel_error"]])
    root = json.dumps(page["demos"]["curvature"].root_id)
    page["evaluate"](f"document.getElementById({root}).querySelector('[data-action=zero]').click()")
    zero = state(page, "curvature")
    assert zero["last"]["max_angle"] == 0 and zero["png"] != moved["png"]
    for control, value in (("a", 0.5), ("c", 0.5), ("alpha", 2.0)):  # C = cI, αc = 1: a Newton step
        newton = move(page, "curvature", control, value)
    assert newton["last"]["rel_points"] == 0 and "both gradients vanish" in newton["text"], newton["text"]
    assert curvature.field(0.5, 0.0, 0.5, 2.0)["rel_points"] == 0


def test_reptile_interpolation(page):
    s = state(page, "reptile_interpolation")
    d = reptile_interpolation.figure_data()
    assert close(s["last"]["new_theta"], d["new_theta"]) and close(s["last"]["outer_end"], d["outer_path"][-1])
    moved = move(page, "reptile_interpolation", "epsilon", 0.8)
    assert moved["png"] != s["png"]
    assert close(moved["last"]["new_theta"], reptile_interpolation.figure_data(epsilon=0.8)["new_theta"])
    moved = move(page, "reptile_interpolation", "inner_steps", 5)
    assert close(moved["last"]["paths"], reptile_interpolation.figure_data(epsilon=0.8, inner_steps=5)["paths"])


def test_imaml_lambda(page):
    s = state(page, "imaml_lambda")
    d = imaml_lambda.figure_data()
    for key in ("phi_star", "loss_grad", "pull", "jacobian"):
        assert close(s["last"][key], d[key]), key
    assert close(s["last"]["solver_end"], d["solver"][-1])
    moved = move(page, "imaml_lambda", "lam", 1.0)       # the slider moves log10 λ: λ = 10
    assert moved["png"] != s["png"] and close(moved["last"]["phi_star"], imaml_lambda.figure_data(lam=10.0)["phi_star"])


def test_directions(page):
    s = state(page, "directions")
    d = directions.figure_data()
    for m in directions.METHODS:
        assert close(s["last"]["fixed"][m], d["fixed"][m], tol=1e-4), m
        assert abs(s["last"]["cos"][m] - d["cos"][m]) < 1e-4, m
    moved = move(page, "directions", "k", 5)
    assert moved["png"] != s["png"]
    d = directions.figure_data(0.3, 5)
    assert all(close(moved["last"]["fixed"][m], d["fixed"][m], tol=1e-4) for m in directions.METHODS)


def test_landscape(page):
    g = landscape.meta_loss_grid()
    before, edges = state(page, "landscape"), set()
    for k in (0, 7, 20):
        s = before if k == 0 else move(page, "landscape", "k", k)
        assert s["last"]["k"] == k and (k == 0 or s["png"] != before["png"])
        a, b = s["last"]["argmin"]                            # the page's minimum is the grid's, to 8 bits
        i, j = int(torch.argmin((g["a"] - a).abs())), int(torch.argmin((g["b"] - b).abs()))
        logs = g["loss"][k].log10()
        assert float(logs[j, i]) <= float(logs.min()) + float(logs.max() - logs.min()) / 255 + 1e-9
        assert s["last"]["edge"] == bool({i, j} & {0, g["a"].numel() - 1})   # the readout says so
        assert s["text"].endswith(landscape.EDGE_NOTE) == s["last"]["edge"], s["text"]
        edges.add(s["last"]["edge"])
    assert edges == {True, False}  # both readouts seen (k = 7's minimum is on the border)


def test_sinusoid_playground(page):
    if "sinusoid_playground" in page["failed"]:
        raise page["failed"]["sinusoid_playground"]
    if "sinusoid_playground" not in page["demos"]:
        pytest.skip("shipped checkpoints not generated yet (python -m mamlbook regenerate all)")
    s = state(page, "sinusoid_playground")
    d = sinusoid_playground.figure_data()
    for name in ("pretrain", "maml"):
        assert close(s["last"]["predictions"][name], d["predictions"][name], tol=2e-4), name
    moved = move(page, "sinusoid_playground", "amplitude", 4.0)
    assert moved["png"] != s["png"]
    d = sinusoid_playground.figure_data(amplitude=4.0)
    assert close(moved["last"]["mse"]["maml"], d["mse"]["maml"], tol=1e-3)
    root = json.dumps(page["demos"]["sinusoid_playground"].root_id)
    page["evaluate"](f"document.getElementById({root}).querySelector('[data-action=resample]').click()")
    resampled = state(page, "sinusoid_playground")
    assert resampled["png"] != moved["png"] and resampled["last"]["x_support"] != moved["last"]["x_support"]


def click_candidate(page, i: int) -> dict:
    """Click candidate ``i`` of the Omniglot game with the mouse, where the page drew it."""
    root = page["demos"]["omniglot_game"].root_id
    canvas = page["tab"].locator(f"#{root} canvas")
    canvas.scroll_into_view_if_needed()
    last = state(page, "omniglot_game")["last"]
    x, y, w, h = last["rects"][i]
    box = canvas.bounding_box()
    scale = box["width"] / last["width"]  # canvas pixels (700, or 350 on a phone) to CSS pixels
    page["tab"].mouse.click(box["x"] + (x + w / 2) * scale, box["y"] + (y + h / 2) * scale)
    return state(page, "omniglot_game")


def wait_for_game_width(page, width: int) -> None:
    """Until the Omniglot game has drawn itself ``width`` canvas pixels wide (a resize
    redraws it on the next frame)."""
    root = json.dumps(page["demos"]["omniglot_game"].root_id)
    page["tab"].wait_for_function(f"document.getElementById({root}).mbLast.width === {width}", timeout=5000)


def test_omniglot_game(page):
    if "omniglot_game" in page["failed"]:
        raise page["failed"]["omniglot_game"]
    root = page["demos"]["omniglot_game"].root_id
    five, twenty = omniglot_game.figure_data(5), omniglot_game.figure_data(20)
    s = state(page, "omniglot_game")
    assert s["last"]["ways"] == 5 and s["last"]["round"] == 0 and s["last"]["choice"] is None
    assert s["last"]["answer"] == int(five["answer"][0]) and s["last"]["maml_choice"] == int(five["maml_choice"][0])
    assert close(s["last"]["maml_probs"], five["maml_probs"][0], tol=1e-4)
    right = click_candidate(page, s["last"]["answer"])           # the reader picks the right character
    assert right["last"]["choice"] == s["last"]["answer"] and right["png"] != s["png"]
    assert (right["last"]["played"], right["last"]["you"]) == (1, 1)
    assert right["last"]["maml"] == int(five["maml_correct"][0]) and "MAML picked" in right["text"]
    again = click_candidate(page, (s["last"]["answer"] + 1) % 5)  # a second click does not count
    assert again["last"]["played"] == 1
    page["tab"].click(f"#{root} [data-action=next]")
    nxt = state(page, "omniglot_game")
    assert nxt["last"]["round"] == 1 and nxt["last"]["choice"] is None and nxt["last"]["answer"] == int(five["answer"][1])
    page["tab"].click(f"#{root} [data-action=ways20]")
    wide = state(page, "omniglot_game")
    assert wide["last"]["ways"] == 20 and len(wide["last"]["rects"]) == 20 and wide["last"]["played"] == 0
    assert wide["last"]["maml_choice"] == int(twenty["maml_choice"][0])
    wrong = click_candidate(page, (wide["last"]["answer"] + 1) % 20)
    assert (wrong["last"]["played"], wrong["last"]["you"]) == (1, 0) and "wrong" in wrong["text"]
    page["tab"].click(f"#{root} [data-action=ways5]")             # each mode keeps its own score
    back = state(page, "omniglot_game")
    assert (back["last"]["ways"], back["last"]["played"], back["last"]["you"]) == (5, 1, 1)
    rounds = len(five["answer"])
    for _ in range(rounds - 2):                                   # on to the last round, played
        page["tab"].click(f"#{root} [data-action=next]")
    last = click_candidate(page, 0)
    assert last["last"]["round"] == rounds - 1 and last["last"]["played"] == 2 and "last round" in last["text"]
    page["tab"].click(f"#{root} [data-action=next]")              # the rounds again: no round counted twice
    fresh = state(page, "omniglot_game")
    assert (fresh["last"]["round"], fresh["last"]["played"], fresh["last"]["you"], fresh["last"]["maml"]) == (0, 0, 0, 0)
    # on a phone's width the game draws itself narrower, the candidates wrapped into rows:
    # the characters keep their size, nothing scrolls sideways, and clicks still land
    size = page["tab"].viewport_size
    page["tab"].set_viewport_size({"width": 390, "height": 844})
    try:
        canvas = page["tab"].locator(f"#{root} canvas")
        # the width alone switches the layout (no click redraws it)
        wait_for_game_width(page, 350)
        for ways in (20, 5):
            page["tab"].click(f"#{root} [data-action=ways{ways}]")
            phone = state(page, "omniglot_game")["last"]
            box = canvas.bounding_box()
            assert phone["width"] == 350 and box["width"] <= 390, (phone["width"], box)
            assert all(x >= 0 and x + w <= 350 for x, _, w, _ in phone["rects"]), phone["rects"]
            assert min(w for _, _, w, _ in phone["rects"]) * box["width"] / 350 >= 50  # CSS pixels
            assert page["evaluate"](f"(() => {{ const r = document.getElementById({json.dumps(root)});"
                                    " return r.scrollWidth <= r.clientWidth; })()")
        picked = click_candidate(page, phone["answer"])
        assert (picked["last"]["choice"], picked["last"]["played"]) == (phone["answer"], 1)
    finally:
        page["tab"].set_viewport_size(size)
    # back at the desktop width: the resize event redraws the wide layout
    wait_for_game_width(page, 700)
    wide = state(page, "omniglot_game")["last"]
    assert wide["width"] == 700 and max(y for _, y, _, _ in wide["rects"]) == 150


#: The demos with a narrow layout (all but the game, which sizes its canvas itself).
NARROW_DEMOS = ("curvature", "sinusoid_playground", "landscape", "reptile_interpolation", "imaml_lambda",
                "directions")


def canvas_layout(page, name: str) -> dict:
    root = json.dumps(page["demos"][name].root_id)
    return page["evaluate"](f"""(() => {{ const c = document.getElementById({root}).querySelector('canvas');
        return {{layout: c.dataset.layout, w: +c.dataset.w, h: +c.dataset.h, shown: c.getBoundingClientRect().width,
                 box: document.getElementById({root}).getBoundingClientRect().width}}; }})()""")


def wait_for_layout(page, name: str, layout: str) -> None:
    """Until demo ``name`` draws its ``"wide"`` or ``"narrow"`` layout (a resize redraws on the next frame)."""
    root = json.dumps(page["demos"][name].root_id)
    page["tab"].wait_for_function(
        f"document.getElementById({root}).querySelector('canvas').dataset.layout === '{layout}'", timeout=5000)


def test_phone_draws_the_narrow_layouts_at_their_size(page):
    """On a 390 px phone each plotting demo draws its narrow layout (panels stacked) at its
    own size, so that its text stays the size it was drawn (11 px, not the 5-6 px of the
    wide canvas shrunk into the column); the numbers it shows are the same; a click on
    the plot still lands where the reader clicked; back at the desktop width, the wide
    layout returns."""
    names = [n for n in NARROW_DEMOS if n in page["demos"]]
    for n in names:  # an earlier test's phone width may still be redrawing back to wide
        wait_for_layout(page, n, "wide")
    wide = {n: state(page, n) for n in names}
    assert all(canvas_layout(page, n)["layout"] == "wide" for n in names)
    ids = json.dumps([page["demos"][n].root_id for n in names])
    page["evaluate"](f"window.readoutNodes = {ids}.map((id) => document.getElementById(id)"
                     ".querySelector('.mbd-read').firstChild)")
    size = page["tab"].viewport_size
    page["tab"].set_viewport_size({"width": 390, "height": 844})
    try:
        for n in names:  # the width alone switches the layout
            wait_for_layout(page, n, "narrow")
            c = canvas_layout(page, n)
            assert c["w"] <= 350 and c["shown"] / c["w"] >= 0.95 and c["shown"] <= c["box"], (n, c)
            phone = state(page, n)
            assert phone["png"] != wide[n]["png"] and phone["last"] == wide[n]["last"], n
            assert phone["text"] == wide[n]["text"], n
        # the redraws said nothing new: the readouts' text nodes (announced when replaced) are the same
        assert page["evaluate"](f"{ids}.every((id, i) => document.getElementById(id)"
                                ".querySelector('.mbd-read').firstChild === window.readoutNodes[i])")
        for n in ("reptile_interpolation", "imaml_lambda"):  # click the plot's centre: θ = (0, 0.75)
            root = page["demos"][n].root_id
            canvas = page["tab"].locator(f"#{root} canvas")
            canvas.scroll_into_view_if_needed()
            box, scale = canvas.bounding_box(), canvas_layout(page, n)["shown"] / canvas_layout(page, n)["w"]
            x0, y0, w, h = 45, 24, 285, 256  # the narrow panel (canvas pixels)
            page["tab"].mouse.click(box["x"] + (x0 + w / 2) * scale, box["y"] + (y0 + h / 2) * scale)
            values = page["evaluate"](f"[...document.getElementById({json.dumps(root)}).querySelectorAll("
                                      "'input[data-name^=theta]')].map((el) => +el.value)")
            assert values == pytest.approx([0.0, 0.75], abs=0.02), (n, values)
    finally:
        page["tab"].set_viewport_size(size)
    for n in names:
        wait_for_layout(page, n, "wide")


def test_keyboard_and_screen_reader(page):
    """Every demo is a named group, every canvas has a role and an accessible name, every
    readout is announced (once, where the reader stops), a slider's value is said once
    (by the slider), a log slider says its value (not its position), and the Omniglot game
    is played without a mouse: Tab to it, the arrow keys (the candidate announced), Enter
    or its number (two digits in 20-way), N for the next round; keys with a modifier are
    left to the page."""
    for name, demo in page["demos"].items():
        group, role, label, hidden, live, outputs = page["evaluate"](f"""(() => {{
            const r = document.getElementById({json.dumps(demo.root_id)}), c = r.querySelector('canvas');
            return [[r.getAttribute('role'), r.getAttribute('aria-label')], c.getAttribute('role'),
                    c.getAttribute('aria-label'), r.querySelector('.mbd-read').getAttribute('aria-hidden'),
                    r.querySelector('.mbd-sr').getAttribute('aria-live'),
                    [...r.querySelectorAll('output')].map((o) => o.getAttribute('aria-hidden'))]; }})()""")
        expected = "application" if name == "omniglot_game" else "img"  # the game takes keys
        assert role == expected and len(label) > 40 and live == "polite" and hidden == "true", (name, role, label, live)
        assert group[0] == "group" and group[1].startswith("Interactive demo: ") and len(group[1]) > 25, (name, group)
        assert set(outputs) <= {"true"}, (name, outputs)  # the slider itself says its value (aria-valuetext)
    # an arrow key held on a slider: the readout follows at once, the screen reader hears it once, where it stops
    root = json.dumps(page["demos"]["landscape"].root_id)
    move(page, "landscape", "k", 5)  # room to move right (earlier tests may leave it at the end)
    page["tab"].wait_for_timeout(1000)
    page["evaluate"](f"""(() => {{ const r = document.getElementById({root}), sr = r.querySelector('.mbd-sr');
        window.spoken = []; new MutationObserver(() => window.spoken.push(sr.textContent))
          .observe(sr, {{childList: true, characterData: true, subtree: true}}); }})()""")
    before = state(page, "landscape")["text"]
    page["tab"].focus(f"#{page['demos']['landscape'].root_id} input[data-name=k]")
    for _ in range(3):
        page["tab"].keyboard.press("ArrowRight")
    during = state(page, "landscape")["text"]
    assert during != before and page["evaluate"]("window.spoken") == []  # shown at once, not yet spoken
    page["tab"].wait_for_timeout(1000)
    assert page["evaluate"]("window.spoken") == [during]  # spoken once, the words where it stopped
    lam = json.dumps(page["demos"]["imaml_lambda"].root_id)
    said, shown, position = page["evaluate"](f"""(() => {{ const el = document.getElementById({lam}).querySelector('input[data-name=lam]');
        return [el.getAttribute('aria-valuetext'), el.parentElement.querySelector('output').textContent, el.value]; }})()""")
    assert said == shown and float(said) == pytest.approx(10 ** float(position), rel=1e-3) and said != position
    root, tab = page["demos"]["omniglot_game"].root_id, page["tab"]
    tab.click(f"#{root} [data-action=ways5]")
    tab.click(f"#{root} [data-action=next]")                      # an open round
    pressed = page["evaluate"](f"[...document.querySelectorAll('#{root} [data-action^=ways]')]"
                               ".map((b) => b.getAttribute('aria-pressed'))")
    assert pressed == ["true", "false"]
    s = state(page, "omniglot_game")
    assert s["last"]["choice"] is None and "keyboard" in s["text"]
    tab.keyboard.press("Tab")                                     # from "next round" to the game
    assert page["evaluate"](f"document.activeElement === document.querySelector('#{root} canvas')")
    focused = state(page, "omniglot_game")
    assert focused["png"] != s["png"] and focused["last"]["cursor"] == 0  # the focus ring is drawn
    assert focused["text"].startswith("Candidate 1 of 5: Enter picks it.")  # said, not only drawn
    tab.keyboard.press("ArrowUp")                                 # off the grid: the cursor stays
    assert state(page, "omniglot_game")["last"]["cursor"] == 0
    for _ in range(s["last"]["answer"]):
        tab.keyboard.press("ArrowRight")
    assert state(page, "omniglot_game")["last"]["cursor"] == s["last"]["answer"]
    tab.keyboard.press("Control+1")                               # a modifier: not the game's key
    assert state(page, "omniglot_game")["last"]["choice"] is None
    assert state(page, "omniglot_game")["text"].startswith(f"Candidate {s['last']['answer'] + 1} of 5")
    tab.keyboard.press("Enter")
    after = state(page, "omniglot_game")
    spoken = page["evaluate"](f"document.querySelector('#{root} .mbd-sr').textContent")
    assert spoken.startswith("You picked"), spoken  # a pick's result is said at once, not after a pause
    picked = after["last"]
    assert picked["choice"] == s["last"]["answer"] and picked["you"] == s["last"]["you"] + 1
    best = max(range(5), key=lambda i: picked["maml_probs"][i])  # MAML's probabilities in words, not only drawn
    assert f"its three most likely: {best + 1} ({100 * picked['maml_probs'][best]:.0f}%)" in after["text"]
    wrong = (s["last"]["answer"] + 1) % 5
    tab.keyboard.press(str(wrong + 1))                            # an answered round takes no second pick
    again = state(page, "omniglot_game")["last"]
    assert (again["choice"], again["you"], again["played"]) == (picked["choice"], picked["you"], picked["played"])
    tab.keyboard.press("n")                                       # the next round, from the keyboard
    fresh = state(page, "omniglot_game")["last"]
    assert fresh["choice"] is None and fresh["round"] != picked["round"]
    tab.keyboard.press("3")
    assert state(page, "omniglot_game")["last"]["choice"] == 2
    # 20-way: a 1 or a 2 waits for a second digit (typing 12 picked 1), then picks alone
    tab.click(f"#{root} [data-action=ways20]")
    tab.focus(f"#{root} canvas")
    tab.keyboard.press("n")  # an open round (earlier tests may have answered this one)
    tab.keyboard.press("1")
    spoken = page["evaluate"](f"document.querySelector('#{root} .mbd-sr').textContent")
    assert spoken.startswith("1: a second digit picks 10 to 19, or wait to pick 1."), spoken
    tab.keyboard.press("2")
    assert state(page, "omniglot_game")["last"]["choice"] == 11
    tab.keyboard.press("n")
    tab.keyboard.press("2")
    assert state(page, "omniglot_game")["last"]["choice"] is None  # waiting: 2, or 20?
    tab.wait_for_timeout(1200)
    assert state(page, "omniglot_game")["last"]["choice"] == 1
    tab.keyboard.press("n")
    tab.keyboard.press("7")  # 70 is beyond 20: picked at once
    assert state(page, "omniglot_game")["last"]["choice"] == 6
    tab.keyboard.press("n")
    tab.keyboard.press("1")  # then leave the game: the waiting digit is dropped, nothing picked or said
    spoken = page["evaluate"](f"document.querySelector('#{root} .mbd-sr').textContent")
    tab.keyboard.press("Tab")
    tab.wait_for_timeout(1200)
    assert state(page, "omniglot_game")["last"]["choice"] is None
    assert page["evaluate"](f"document.querySelector('#{root} .mbd-sr').textContent") == spoken
    tab.click(f"#{root} [data-action=ways5]")


def test_sliders_are_touch_targets_on_a_touch_screen(browser, page):
    """On a touch screen (``pointer: coarse``) the sliders are at least 24 px tall and 180
    px long (120 with a mouse: 500 values in 104 px of track), rows of controls at least
    24 px apart (WCAG 2.5.8; 16 px and 21 px with a mouse), buttons at least 36 px tall
    (24 with a mouse), the game says "tap" (not click or keys), and nothing scrolls
    sideways on a 390 px phone."""
    context, tab, guard = new_page(browser, width=390, height=844, touch=True)
    try:
        tab.goto(page["url"])
        assert tab.evaluate("matchMedia('(pointer: coarse)').matches")
        heights, gaps = tab.evaluate("""(() => {
            const h = [], g = [];
            document.querySelectorAll('.mbd .mbd-ctls').forEach((ctls) => {
              const tops = [...new Set([...ctls.querySelectorAll('input[type=range]')].map((el) => {
                const r = el.getBoundingClientRect(); h.push(r.height); return Math.round(r.top); }))].sort((a, b) => a - b);
              tops.slice(1).forEach((t, i) => g.push(t - tops[i]));
            });
            return [h, g]; })()""")
        assert heights and min(heights) >= 24, heights
        assert gaps and min(gaps) >= 24, gaps
        widths, buttons = tab.evaluate("""[[...document.querySelectorAll('.mbd input[type=range]')].map(
            (el) => el.getBoundingClientRect().width), [...document.querySelectorAll('.mbd button')].map(
            (el) => el.getBoundingClientRect().height)]""")
        assert min(widths) >= 180 and buttons and min(buttons) >= 36, (widths, buttons)
        game = json.dumps(page["demos"]["omniglot_game"].root_id)
        assert tab.evaluate(f"document.getElementById({game}).querySelector('.mbd-read').textContent").startswith(
            "Tap the matching character.")
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390
        assert not guard.problems(), guard.problems()
    finally:
        context.close()


def test_nothing_is_announced_as_the_page_opens(browser, page):
    """The readouts' hidden live copies get their first words while the page is read in; a
    copy written after that (a first write delayed like a slider's) would be announced as
    the page opens, one demo after another."""
    context, tab, guard = new_page(browser, width=900, height=1200)
    try:
        tab.add_init_script("""window.lateWords = []; window.addEventListener('load', () => {
            document.querySelectorAll('.mbd-sr').forEach((sr) => new MutationObserver(
                () => window.lateWords.push(sr.textContent)).observe(sr, {childList: true, characterData: true,
                subtree: true})); });""")
        tab.goto(page["url"])
        tab.wait_for_timeout(1500)
        late, copies = tab.evaluate("""[window.lateWords, [...document.querySelectorAll('.mbd')].map(
            (r) => [r.querySelector('.mbd-sr').textContent, r.querySelector('.mbd-read').textContent])]""")
        assert not guard.problems(), guard.problems()
    finally:
        context.close()
    assert late == [], late
    assert copies and all(spoken == shown and shown for spoken, shown in copies), copies
