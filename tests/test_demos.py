"""The demos: figure data against independent computations, bad inputs, widgets, static HTML."""
import json
import math
import re

import pytest
import torch

import mamlbook as mb
from mamlbook.demos import (_html, _quadratic, curvature, directions, imaml_lambda, landscape, reptile_interpolation,
                            sinusoid_playground)

DEMOS = [curvature, sinusoid_playground, landscape, reptile_interpolation, imaml_lambda, directions]


@pytest.fixture
def cheap(monkeypatch):
    """Small stand-ins for the expensive parts: random full-size sinusoid nets (no checkpoint
    needed), a coarse landscape grid, a 2-value α grid for the directions table."""
    torch.manual_seed(0)
    nets = {name: mb.SinusoidMLP() for name in sinusoid_playground.RECIPES}
    monkeypatch.setattr(sinusoid_playground, "shipped_models",
                        lambda: {k: (m, mb.detached(mb.parameters_of(m))) for k, m in nets.items()})
    small = landscape.meta_loss_grid(n=9, max_steps=landscape.MAX_STEPS)
    monkeypatch.setattr(landscape, "meta_loss_grid", lambda *a, **k: small)
    monkeypatch.setattr(directions, "ALPHAS", (0.3, 0.6))
    monkeypatch.setattr(directions, "STEPS", (1, 2))


# ------------------------------------------------------------------ curvature

@pytest.mark.parametrize("abc,alpha", [((0.5, -0.1, 0.0), 1.0), ((-0.3, 0.4, 0.2), 0.7), ((0.0, 0.0, 0.0), 1.5)])
def test_curvature_gradients_match_autograd(abc, alpha):
    C = curvature.curvature_matrix(*abc)
    x = torch.randn(7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    assert torch.allclose(curvature.grad_f(x, C), torch.autograd.grad(curvature.f(x, C).sum(), x)[0])
    # true meta-gradient: differentiate f(x − α∇f(x)) through the inner step (autograd's own ∇f)
    g = torch.autograd.grad(curvature.f(x, C).sum(), x, create_graph=True)[0]
    true = torch.autograd.grad(curvature.f(x - alpha * g, C).sum(), x)[0]
    assert torch.allclose(curvature.maml_gradient(x, C, alpha), true, atol=1e-12)
    # first order: the gradient at the adapted point, the adapted point treated as a constant
    x_adapted = (x - alpha * g).detach().requires_grad_()
    fo = torch.autograd.grad(curvature.f(x_adapted, C).sum(), x_adapted)[0]
    assert torch.allclose(curvature.fomaml_gradient(x, C, alpha), fo, atol=1e-12)


def test_curvature_field_shapes_and_readout():
    d = curvature.field(n=5)
    assert d["points"].shape == (5, 5, 2) and d["maml"].shape == (5, 5, 2) and d["f"].shape == (5, 5)
    assert 0 < d["mean_angle"] <= d["max_angle"] < 90
    assert d["rel_error"] <= d["bound"] + 1e-12       # ‖αC v‖ ≤ α‖C‖₂‖v‖
    zero = curvature.field(0.0, 0.0, 0.0, 1.0, n=5)      # the "set C = 0" button: identical fields
    assert zero["max_angle"] == 0 and zero["rel_error"] == 0 and torch.equal(zero["maml"], zero["fomaml"])


def test_first_order_points_the_wrong_way_only_past_alpha_lambda_max_one():
    """Exercise ex-fomaml-wrong-way (chapter 04): (a) an angle above 90° needs αλ_max(C) > 1;
    (b) λ_max = (a+c)/2 + √(((a−c)/2)² + b²) ≤ 1 on the sliders' box, 1 at a = c = |b| = ½;
    (c) the grid's largest angles at a = b = c = ½ quoted in its solution (102.5° at α = 1.2,
    172.4° at α = 2, under 90° at α = 0.95 and 1.05)."""
    corners = [(a, b, c) for a in (-0.5, 0.0, 0.5) for b in (-0.5, 0.0, 0.5) for c in (-0.5, 0.0, 0.5)]
    generator = torch.Generator().manual_seed(0)
    random = [tuple(float(v) for v in torch.rand(3, generator=generator, dtype=torch.float64) - 0.5)
              for _ in range(30)]
    largest = 0.0
    for a, b, c in corners + random:
        closed_form = (a + c) / 2 + math.sqrt(((a - c) / 2) ** 2 + b ** 2)
        exact = float(torch.linalg.eigvalsh(curvature.curvature_matrix(a, b, c))[-1])
        assert abs(closed_form - exact) < 1e-12
        largest = max(largest, exact)
        for alpha in (0.5, 1.0, 1.5, 2.0):
            if curvature.field(a, b, c, alpha, n=9)["max_angle"] > 90:
                assert alpha * exact > 1, (a, b, c, alpha)
    assert abs(largest - 1.0) < 1e-12  # reached at a = c = ½, b = ±½ (corners above)
    angles = {alpha: curvature.field(a=0.5, b=0.5, c=0.5, alpha=alpha)["max_angle"] for alpha in (0.95, 1.05, 1.2, 2.0)}
    assert angles[0.95] < 90 and angles[1.05] < 90, angles
    assert round(angles[1.2], 1) == 102.5 and round(angles[2.0], 1) == 172.4, angles


def test_curvature_newton_step_both_gradients_vanish():
    # C = cI with αc = 1: one inner step lands on the minimum from every x, so ∇f(x') = 0
    # and MAML's (I − αC)∇f(x') too; the readout says so instead of a 0/0 "error 0.000"
    d = curvature.field(0.5, 0.0, 0.5, 2.0, n=7)
    assert float(d["maml"].abs().max()) < 1e-12 and float(d["fomaml"].abs().max()) < 1e-12
    assert d["rel_points"] == 0 and "both gradients vanish" in curvature.readout(d)
    assert "relative error" in curvature.readout(curvature.field(n=5))


def test_curvature_rejects_out_of_range():
    with pytest.raises(ValueError, match="b must be in"):
        curvature.field(b=0.6)
    with pytest.raises(ValueError, match="alpha"):
        curvature.static(alpha=3.0)
    with pytest.raises(TypeError, match="unknown controls"):
        curvature.static(d=0.1)


# ------------------------------------------------------------------ quadratic tasks through the package

def test_quadratic_tasks_are_the_stated_losses():
    As, cs = _quadratic.tasks()
    batch, model = _quadratic.task_batch(As, cs), _quadratic.Linear2()
    w = torch.randn(2, 2, dtype=torch.float64)
    got = mb.task_losses(model, {"w": w}, batch.x_support, batch.y_support)
    assert torch.allclose(got, torch.stack([_quadratic.loss(w[t], As[t], cs[t]) for t in range(2)]))
    with pytest.raises(ValueError, match="positive semi-definite"):
        _quadratic.task_batch(-As, cs)


# ------------------------------------------------------------------ Reptile

def test_reptile_update_matches_closed_form():
    alpha, k, eps, theta = 0.4, 3, 0.5, torch.tensor([1.8, -1.0], dtype=torch.float64)
    d = reptile_interpolation.figure_data(alpha, k, eps, *theta.tolist(), outer_iterations=2)
    As, cs = _quadratic.tasks()
    ends = [c + torch.linalg.matrix_power(torch.eye(2, dtype=torch.float64) - alpha * A, k) @ (theta - c)
            for A, c in zip(As, cs)]
    assert d["paths"].shape == (2, k + 1, 2) and d["outer_path"].shape == (3, 2)
    assert torch.allclose(d["paths"][:, -1], torch.stack(ends))
    assert torch.allclose(d["new_theta"], theta + eps * (torch.stack(ends).mean(0) - theta))  # via get_method("reptile")


@pytest.mark.parametrize("kwargs,name", [({"epsilon": 0.9}, "epsilon"), ({"inner_steps": 6}, "inner_steps"),
                                         ({"inner_lr": 0.0}, "inner_lr"), ({"theta1": 9.0}, "theta1")])
def test_reptile_rejects_out_of_range(kwargs, name):
    with pytest.raises(ValueError, match=name):
        reptile_interpolation.figure_data(**kwargs)


# ------------------------------------------------------------------ iMAML

@pytest.mark.parametrize("lam", [0.01, 1.0, 100.0])
def test_imaml_minimiser_balances_forces(lam):
    A, c = imaml_lambda.task()
    theta = torch.tensor([1.5, -0.5], dtype=torch.float64)
    phi = imaml_lambda.minimiser(theta, lam, A, c).requires_grad_()
    regularised = _quadratic.loss(phi, A, c) + 0.5 * lam * (phi - theta).square().sum()
    assert torch.autograd.grad(regularised, phi)[0].abs().max() < 1e-10
    d = imaml_lambda.figure_data(lam, *theta.tolist())
    assert torch.allclose(d["loss_grad"], d["pull"], atol=1e-10)    # ∇L(φ*) = −λ(φ* − θ)
    J = torch.autograd.functional.jacobian(lambda t: imaml_lambda.minimiser(t, lam, A, c), theta)
    assert torch.allclose(d["jacobian"], J, atol=1e-10)              # (I + A/λ)⁻¹
    assert d["lambda_path"].shape == (61, 2) and d["solver"].shape == (imaml_lambda.SOLVER_STEPS + 1, 2)
    dist = (d["solver"] - d["phi_star"]).norm(dim=1)                 # the package's proximal_adapt converges
    assert dist[-1] < 0.1 * dist[0] + 1e-9


def test_imaml_rejects_out_of_range():
    with pytest.raises(ValueError, match="lam"):
        imaml_lambda.figure_data(lam=1000.0)
    with pytest.raises(ValueError, match="theta2"):
        imaml_lambda.static(theta2=5.0)


# ------------------------------------------------------------------ directions

def closed_form(method, theta, alpha, k):
    As, cs = _quadratic.tasks()
    I, out = torch.eye(2, dtype=torch.float64), []
    for A, c in zip(As, cs):
        phi = c + torch.linalg.matrix_power(I - alpha * A, k) @ (theta - c)
        if method == "maml":
            out.append(torch.linalg.matrix_power(I - alpha * A, k) @ A @ (phi - c))
        elif method == "fomaml":
            out.append(A @ (phi - c))
        elif method == "reptile":
            out.append(theta - phi)
        else:
            lam = 1 / (k * alpha)
            star = torch.linalg.solve(A + lam * I, A @ c + lam * theta)
            out.append(torch.linalg.solve(I + A / lam, A @ (star - c)))
    return torch.stack(out).mean(0)


@pytest.mark.parametrize("method", directions.METHODS)
def test_directions_are_the_package_methods_and_affine(method):
    alpha, k = 0.3, 2
    M, v = directions.affine_map(method, alpha, k)
    for theta in torch.tensor([[1.0, -0.7], [-2.0, 2.5]], dtype=torch.float64):
        direct = directions.direction(method, theta, alpha, k)
        assert torch.allclose(direct, closed_form(method, theta, alpha, k), atol=1e-8)
        assert torch.allclose(M @ theta + v, direct, atol=1e-8)
    fixed = directions.fixed_point(M, v)
    assert directions.direction(method, fixed, alpha, k).abs().max() < 1e-8


def test_directions_figure_data_and_bad_input():
    d = directions.figure_data(0.5, 3, n=3)
    assert d["points"].shape == (9, 2) and all(d["fields"][m].shape == (9, 2) for m in directions.METHODS)
    assert d["cos"]["maml"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="k must be in"):
        directions.figure_data(0.5, 6)
    with pytest.raises(ValueError, match="method"):
        directions.direction("sgd", torch.zeros(2, dtype=torch.float64), 0.5, 1)


# ------------------------------------------------------------------ landscape

def test_landscape_frames_are_meta_losses():
    g = landscape.meta_loss_grid(n=3, max_steps=2)
    x, y = landscape.task_data()
    assert g["loss"].shape == (3, 3, 3)
    for (j, i) in [(0, 0), (1, 2), (2, 1)]:
        a, b = float(g["a"][i]), float(g["b"][j])
        total0 = total2 = 0.0
        for t in range(x.shape[0]):  # one task at a time, plain autograd
            p = torch.tensor([a, b], dtype=torch.float64, requires_grad=True)
            loss = lambda p: (torch.nn.functional.softplus(p[0] * x[t] + p[1]) - y[t]).square().mean()
            total0 += float(loss(p).detach())
            for _ in range(2):
                p = (p - landscape.INNER_LR * torch.autograd.grad(loss(p), p)[0]).detach().requires_grad_()
            total2 += float(loss(p).detach())
        assert g["loss"][0, j, i] == pytest.approx(total0, rel=1e-10)
        assert g["loss"][2, j, i] == pytest.approx(total2, rel=1e-10)


def test_landscape_minimum_says_when_it_is_on_the_window_edge():
    axis = torch.linspace(-1, 1, 4, dtype=torch.float64)
    loss = torch.full((2, 4, 4), 5.0, dtype=torch.float64)
    loss[0, 1, 2] = 1.0   # inside: b = axis[1], a = axis[2]
    loss[1, 2, 3] = 2.0   # a = axis[3], the right edge
    grid = {"a": axis, "b": axis, "loss": loss}
    assert landscape.grid_minimum(grid, 0) == (float(axis[2]), float(axis[1]), 1.0, False)
    assert landscape.grid_minimum(grid, 1) == (1.0, float(axis[2]), 2.0, True)
    assert "edge" not in landscape.describe_minimum(0, *landscape.grid_minimum(grid, 0))
    assert "window's edge" in landscape.describe_minimum(1, *landscape.grid_minimum(grid, 1))
    g = landscape.meta_loss_grid(n=9)   # the demo's own frames, the reader's slider at k = 5
    a, b, value, on_edge = landscape.grid_minimum(g, 5)
    assert value == float(g["loss"][5].min()) and on_edge == (abs(a) == 3.0 or abs(b) == 3.0)


def test_landscape_quantisation_and_bad_input():
    g = landscape.meta_loss_grid(n=5, max_steps=1)
    q, ranges = landscape.quantised_frames(g)
    q = torch.frombuffer(bytearray(q), dtype=torch.uint8).view(2, 5, 5).double()
    lo, hi = torch.tensor(ranges, dtype=torch.float64).T
    back = lo[:, None, None] + (hi - lo)[:, None, None] * q / 255
    assert (back - g["loss"].log10()).abs().max() <= (hi - lo).max() / 510 + 1e-4
    with pytest.raises(ValueError, match="k must be in"):
        landscape.static(k=21)


# ------------------------------------------------------------------ sinusoid playground

def test_playground_curves_are_sgd_on_the_support_set(cheap):
    d = sinusoid_playground.figure_data(2.0, 0.5, shots=3, steps=2)
    model, params = sinusoid_playground.shipped_models()["maml"]
    assert d["predictions"]["maml"].shape == (3, sinusoid_playground.GRID) and d["mse"]["maml"].shape == (3,)
    x, xs, ys = d["x"].view(-1, 1), d["x_support"].view(-1, 1), d["y_support"].view(-1, 1)
    from torch.func import functional_call
    p = {k: v.clone().requires_grad_() for k, v in params.items()}
    for step in range(3):
        with torch.no_grad():
            assert torch.allclose(functional_call(model, p, (x,)).view(-1), d["predictions"]["maml"][step], atol=1e-5)
        loss = (functional_call(model, p, (xs,)) - ys).square().mean()
        p = {k: (v - 0.01 * g).detach().requires_grad_() for (k, v), g in zip(p.items(), torch.autograd.grad(loss, list(p.values())))}
    assert torch.allclose(d["y_support"], 2.0 * torch.sin(d["x_support"] - 0.5))


@pytest.mark.parametrize("kwargs,name", [({"amplitude": 6.0}, "amplitude"), ({"phase": -0.1}, "phase"),
                                         ({"shots": 0}, "shots"), ({"steps": 11}, "steps")])
def test_playground_rejects_out_of_range(kwargs, name):
    with pytest.raises(ValueError, match=name):
        sinusoid_playground.figure_data(**kwargs, models={})


def test_shipped_checkpoints_drive_the_playground():
    if not all((mb.checkpoints.PRETRAINED_DIR / f"{r}.pt").is_file() for r in sinusoid_playground.RECIPES.values()):
        pytest.skip("shipped checkpoints not generated yet (python -m mamlbook regenerate all)")
    d = sinusoid_playground.figure_data(3.0, 1.0, shots=5, steps=5)
    assert d["mse"]["maml"][-1] < d["mse"]["pretrain"][-1]   # the point of the figure (MAML paper, Table 2)


# ------------------------------------------------------------------ live widgets and static HTML

@pytest.mark.parametrize("demo", DEMOS, ids=lambda m: m.__name__.split(".")[-1])
def test_live_builds_a_widget_without_a_kernel(demo, cheap):
    import ipywidgets
    box = demo.live()
    assert isinstance(box, ipywidgets.VBox) and box.image.value[:8] == b"\x89PNG\r\n\x1a\n" and box.readout.value
    assert all(isinstance(c, ipywidgets.ValueWidget) for c in box.controls.values())


def test_live_redraws_when_a_control_moves():
    import ipywidgets
    box = curvature.live()
    before, text = box.image.value, box.readout.value
    button = next(w for w in box.children[0].children if isinstance(w, ipywidgets.Button))
    button.click()                                   # "set C = 0": a, b, c to 0, fields identical
    assert [box.controls[k].value for k in "abc"] == [0, 0, 0]
    assert box.image.value != before and "max 0.0°" in box.readout.value and box.readout.value != text
    with pytest.raises(ValueError, match="a must be in"):
        curvature.live(a=0.7)


@pytest.mark.parametrize("demo", DEMOS, ids=lambda m: m.__name__.split(".")[-1])
def test_static_html_is_self_contained_small_and_unique(demo, cheap):
    first, second = demo.static(), demo.static()
    html = first._repr_html_()
    assert isinstance(first, _html.StaticDemo) and first.nbytes < demo.MAX_BYTES
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I), "external URL in the demo"
    assert "http" not in html.lower() and "://" not in html
    assert re.findall(r'\bid="([^"]+)"', html) == [first.root_id]   # one id per demo: many demos per page
    assert first.root_id != second.root_id
    assert "<canvas" in html and 'type="range"' in html and "</script>" in html
    assert "$" not in html.replace("${", "") and "\\(" not in html   # nothing MathJax would try to typeset
    # a phone's layout beside the wide one, no wider than a phone's column (the browser
    # tests draw it: tests/browser/test_static_demos.py)
    wide, narrow = re.search(r'data-wide="(\d+),(\d+)" data-narrow="(\d+),(\d+)"', html).groups()[::2]
    assert int(narrow) <= 350 < _html.NARROW_FRACTION * int(wide)


@pytest.mark.parametrize("demo", DEMOS, ids=lambda m: m.__name__.split(".")[-1])
def test_unknown_controls_are_refused(demo):
    with pytest.raises(TypeError, match="nope"):
        demo.static(nope=1)
    with pytest.raises(TypeError, match="nope"):
        demo.live(nope=1)


# ------------------------------------------------------------------ the Omniglot game

from mamlbook import omniglot_results  # noqa: E402
from mamlbook.demos import omniglot_game  # noqa: E402


def test_game_rounds_are_held_out_tasks_of_the_chapter_protocol():
    tasks, question = omniglot_game.game_tasks(5, 3)
    same = mb.protocol.held_out_tasks(1, num_tasks=3, ways=5, seed=omniglot_game.SEED)
    assert torch.equal(tasks.x_support, same.x_support) and torch.equal(tasks.x_query, same.x_query)
    assert question.shape == (3,) and int(question.min()) >= 0 and int(question.max()) < 5
    wide, _ = omniglot_game.game_tasks(20, 2)
    assert wide.x_support.shape == (2, 20, 1, 28, 28) and wide.x_query.shape == (2, 20, 1, 28, 28)


@pytest.mark.parametrize("ways", [5, 20])
def test_game_answers_are_the_shipped_maml_adapted_as_in_the_table(ways):
    d = omniglot_game.figure_data(ways, rounds=3)
    tasks, question = omniglot_game.game_tasks(ways, 3)
    probs = omniglot_game.maml_probabilities(tasks)                       # (3, ways, ways)
    assert torch.allclose(probs.sum(-1), torch.ones(3, ways), atol=1e-5)
    # the per-task accuracy of the table's protocol is the share of argmax hits among these probabilities
    table = omniglot_results.checkpoint_accuracy(omniglot_game.RECIPE, tasks)
    assert torch.allclose((probs.argmax(-1) == tasks.y_query).double().mean(1), table)
    r = torch.arange(3)
    assert torch.equal(d["maml_probs"], probs[r, question]) and torch.equal(d["answer"], tasks.y_query[r, question])
    assert torch.equal(d["maml_choice"], probs[r, question].argmax(-1))
    assert torch.equal(d["maml_correct"], d["maml_choice"] == d["answer"])
    assert torch.equal(d["question_image"], tasks.x_query[r, question, 0])


def test_game_images_survive_the_4_bit_encoding():
    images = torch.rand(3, 7, 28, 28)
    back = omniglot_game.dequantise(omniglot_game.quantise(images), images.numel()).view_as(images)
    assert float((back - images).abs().max()) <= 0.5 / 15 + 1e-6
    odd = torch.rand(5)  # an odd number of pixels: the last byte is half used
    assert torch.allclose(omniglot_game.dequantise(omniglot_game.quantise(odd), 5), (odd * 15).round() / 15)


def test_game_score_and_bad_input():
    assert omniglot_game.score([1, 2, 0], [1, 0, 0], [1, 2, 2]) == {"played": 3, "you": 2, "maml": 1}
    with pytest.raises(ValueError, match="one entry per round"):
        omniglot_game.score([1, 2], [1, 0, 0], [1, 2, 2])
    with pytest.raises(ValueError, match=r"ways must be one of \[5, 20\], got 7"):
        omniglot_game.game_tasks(7, 3)
    with pytest.raises(ValueError, match=r"rounds must be in \[1, 1000\], got 0"):
        omniglot_game.game_tasks(5, 0)
    with pytest.raises(ValueError, match="ways must be one of"):
        omniglot_game.static(ways=10)
    with pytest.raises(TypeError, match="nope"):
        omniglot_game.static(nope=1)
    with pytest.raises(TypeError, match="nope"):
        omniglot_game.live(nope=1)


def test_game_live_keeps_score_and_draws_new_tasks():
    import ipywidgets
    box = omniglot_game.live()
    assert isinstance(box, ipywidgets.VBox) and box.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "you 0/0, MAML 0/0" in box.readout.value
    state = box.state
    answer, maml = state["answer"], int(state["probs"].argmax())
    before = box.image.value
    box.choose(answer)
    assert f"you 1/1, MAML {int(maml == answer)}/1" in box.readout.value and box.image.value != before
    box.choose((answer + 1) % 5)                      # a second pick in the same round does not count
    assert "you 1/1" in box.readout.value
    support = state["support"].clone()
    box.next_task()
    assert not torch.equal(state["support"], support) and "pick the character" in box.readout.value
    box.ways.value = 20                                # the toggle draws a 20-way task, with its own score
    assert state["support"].shape == (20, 28, 28) and "20-way score: you 0/0" in box.readout.value
    assert len(box.children[2].children) == 20        # one button per character
    with pytest.raises(ValueError, match=r"choice must be in \[0, 19\], got 20"):
        box.choose(20)


def test_game_static_is_self_contained_and_carries_the_rounds():
    demo = omniglot_game.static()
    html = demo._repr_html_()
    assert demo.nbytes < omniglot_game.MAX_BYTES
    assert "http" not in html.lower() and "://" not in html
    assert re.findall(r'\bid="([^"]+)"', html) == [demo.root_id]
    data = json.loads(re.search(r"const DATA = (\{.*?\});\n", html).group(1))
    for mode in data["modes"]:
        d = omniglot_game.figure_data(mode["ways"])
        images = torch.cat([d["support"], d["question_image"][:, None]], 1)
        back = omniglot_game.dequantise(mode["images"], images.numel()).view_as(images)
        assert float((back - images).abs().max()) <= 0.5 / 15 + 1e-6
        assert mode["answer"] == d["answer"].tolist() and mode["maml_choice"] == d["maml_choice"].tolist()
        assert torch.allclose(torch.tensor(mode["probs"]), d["maml_probs"].flatten(), atol=1e-4)


# ------------------------------------------------------------------ Reptile: where the outer iterations go


@pytest.mark.parametrize("inner_steps, outer_iterations", [(3, 120), (1, 300)])
def test_reptile_outer_iterations_converge_to_the_fixed_point(inner_steps, outer_iterations):
    """The demo's repeated updates (eq. 5.1) converge to θ* solving Σ_t (I − (I − αA_t)^k)(θ − c_t) = 0
    (the Reptile chapter's last exercise); for k = 1, Σ_t A_t (θ − c_t) = 0, the minimiser of Σ_t L_t."""
    alpha, eps, theta = 0.4, 0.5, (1.8, -1.0)
    As, cs = _quadratic.tasks()
    I = torch.eye(2, dtype=torch.float64)
    W = I - torch.linalg.matrix_power(I - alpha * As, inner_steps)            # (T, 2, 2), symmetric
    star = torch.linalg.solve(W.sum(0), (W @ cs.unsqueeze(-1)).sum(0)).squeeze(-1)
    # θ_{n+1} − θ* = (I − ε mean_t W_t)(θ_n − θ*), a symmetric map: each update shrinks the
    # error by at most its spectral radius ρ (0.77 for k = 3, 0.89 for k = 1)
    rho = float(torch.linalg.eigvalsh(I - eps * W.mean(0)).abs().max())
    d = reptile_interpolation.figure_data(alpha, inner_steps, eps, *theta, outer_iterations=outer_iterations)
    errors = (d["outer_path"] - star).norm(dim=1)
    bound = errors[0] * rho ** torch.arange(outer_iterations + 1, dtype=torch.float64)
    assert bound[-1] < 1e-10                                  # enough updates to get there
    assert (errors <= bound + 1e-13).all(), (errors - bound).max()
    assert errors[-1] < 1e-10, errors[-1]
    # independently of W: the joint minimiser, where autograd's gradient of Σ_t L_t vanishes
    joint = torch.linalg.solve(As.sum(0), (As @ cs.unsqueeze(-1)).sum(0)).squeeze(-1).requires_grad_()
    summed = sum(_quadratic.loss(joint, A, c) for A, c in zip(As, cs))
    assert torch.autograd.grad(summed, joint)[0].abs().max() < 1e-14
    if inner_steps == 1:
        assert (d["outer_path"][-1] - joint).norm() < 1e-10
    else:                                                     # more steps move the fixed point away from it
        assert (d["outer_path"][-1] - joint).norm() > 0.1
