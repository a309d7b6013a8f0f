"""The exercise checkers accept the reference answers, reject wrong ones, and never raise on a mismatch."""
import pytest
import torch

import mamlbook as mb
from mamlbook import exercises

RIGHT_AND_WRONG = {
    "check_inner_step": (lambda params, grads, lr: {k: p - lr * grads[k] for k, p in params.items()},
                         lambda params, grads, lr: {k: p + lr * grads[k] for k, p in params.items()}),
    "check_reptile_update": (lambda theta, adapted, eps: {k: v + eps * sum(a[k] - v for a in adapted) / len(adapted)
                                                          for k, v in theta.items()},
                             lambda theta, adapted, eps: {k: adapted[-1][k] for k in theta}),
    "check_conjugate_gradient": (lambda matvec, b, steps: mb.conjugate_gradient(matvec, b, steps),
                                 lambda matvec, b, steps: b),
    "check_maml_one_step_gradient": (lambda h, g, lr: g - lr * h @ g, lambda h, g, lr: g),
    "check_hessian_vector_product": (lambda f, x, v: torch.func.jvp(torch.func.grad(f), (x,), (v,))[1],
                                     lambda f, x, v: torch.func.grad(f)(x)),
    "check_anil_inner_loop": (lambda f, y, w, b, lr, k: anil_loop(f, y, w, b, lr, k),
                              lambda f, y, w, b, lr, k: anil_loop(f, y, w, b, lr, k - 1)),
    "check_meta_sgd_gradient": (lambda h, g, q, s, lr: (q - lr * h @ (s * q), -lr * g * q),
                                lambda h, g, q, s, lr: (q - lr * s * (h @ q), -lr * g * q)),
}


def anil_loop(features, labels, weight, bias, inner_lr, steps):
    """The chapter's solution: autograd on the mean cross-entropy of the linear head."""
    w, b = weight.clone().requires_grad_(), bias.clone().requires_grad_()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(features @ w.T + b, labels)
        gw, gb = torch.autograd.grad(loss, [w, b])
        w, b = w - inner_lr * gw, b - inner_lr * gb
    return w.detach(), b.detach()


@pytest.mark.parametrize("name", sorted(RIGHT_AND_WRONG))
def test_checker_accepts_right_and_rejects_wrong(name, capsys):
    right, wrong = RIGHT_AND_WRONG[name]
    check = getattr(exercises, name)
    assert check(right) is True
    assert capsys.readouterr().out.startswith("correct")
    assert check(wrong) is False
    assert capsys.readouterr().out.startswith("mismatch: ")


def test_the_package_s_own_function_is_not_an_answer(capsys):
    import functools
    assert exercises.check_conjugate_gradient(mb.conjugate_gradient) is False
    assert "the package's own function" in capsys.readouterr().out
    assert exercises.check_conjugate_gradient(functools.partial(mb.conjugate_gradient)) is False
    assert "your implementation" in capsys.readouterr().out


def test_an_answer_that_ignores_its_settings_does_not_pass(capsys):
    """CG run to convergence whatever ``steps`` says (a direct solve in disguise), and an
    ANIL loop with the first setting's step count and size built in: right on one of the
    checker's cases, wrong on the other."""
    full_solve = lambda matvec, b, steps: mb.conjugate_gradient(matvec, b, b.numel())
    assert exercises.check_conjugate_gradient(full_solve) is False
    said = capsys.readouterr().out
    assert said.startswith("correct") and "mismatch: conjugate gradient after 3 steps" in said
    fixed = lambda f, y, w, b, lr, k: anil_loop(f, y, w, b, 0.5, 3)
    assert exercises.check_anil_inner_loop(fixed) is False
    said = capsys.readouterr().out
    assert said.startswith("correct") and "mismatch: ANIL's inner loop (1 step of" in said
    for seed in range(4):  # the right answers pass on other draws too
        assert exercises.check_conjugate_gradient(RIGHT_AND_WRONG["check_conjugate_gradient"][0], seed=seed)
        assert exercises.check_anil_inner_loop(RIGHT_AND_WRONG["check_anil_inner_loop"][0], seed=seed)


@pytest.mark.parametrize("name", sorted(RIGHT_AND_WRONG))
def test_an_undefined_answer_is_named_not_raised(name, capsys):
    """Otter passes None for a name the notebook never defined: a mismatch that says so."""
    assert getattr(exercises, name)(None) is False
    said = capsys.readouterr().out
    assert said.startswith("mismatch: ") and "expected your function, got None" in said


def test_a_wrong_number_is_not_answered_by_the_checker(capsys):
    assert exercises.check_pooled_mse(0.0) is False
    said = capsys.readouterr().out
    assert said.startswith("mismatch: ") and "3.00" not in said  # the answer is 3.0057


def test_checker_explains_shape_and_key_mistakes(capsys):
    assert exercises.check_inner_step(lambda p, g, lr: {k: v for k, v in list(p.items())[:2]}) is False
    assert "expected keys" in capsys.readouterr().out
    assert exercises.check_maml_one_step_gradient(lambda h, g, lr: g[:3]) is False
    assert "shape (3,)" in capsys.readouterr().out
    assert exercises.check_inner_step(lambda p, g, lr: None) is False
    assert "got NoneType" in capsys.readouterr().out


# The checkers added for the student edition (tools/grading.yml): each accepts the chapter's
# answer and rejects a plausible mistake.
def test_pooled_mse_closed_form_and_grid_average(capsys):
    import math
    ea, ea2 = 2.55, (5**3 - 0.1**3) / (3 * 4.9)
    xs = torch.linspace(-5, 5, 100001, dtype=torch.float64)
    grid = ea2 / 2 - (2 * ea / math.pi) ** 2 * torch.cos(xs).pow(2).mean()  # the chapter's solution
    assert exercises.check_pooled_mse(grid) is True
    assert exercises.check_pooled_mse(float(grid)) is True
    assert exercises.check_pooled_mse(ea2 / 2) is False  # the error of predicting 0
    assert exercises.check_pooled_mse(...) is False
    assert "expected a number" in capsys.readouterr().out


def test_meta_batch_shapes(capsys):
    right = {"x_support": (8, 10, 1), "y_support": torch.Size([8, 10, 1]), "x_query": (8, 15, 1),
             "y_query": (8, 15, 1)}
    assert exercises.check_meta_batch_shapes(right) is True
    assert exercises.check_meta_batch_shapes({**right, "x_query": (8, 15)}) is False
    out = capsys.readouterr().out
    assert "x_query is not (8, 15)" in out and "(8, 15, 1)" not in out  # never the answer
    assert exercises.check_meta_batch_shapes(...) is False


def test_proximal_jacobian(capsys):
    def right(a, lam):
        return lam * torch.linalg.inv(a + lam * torch.eye(a.shape[0], dtype=a.dtype))

    assert exercises.check_proximal_jacobian(right) is True
    # the inverse without the factor lam, and the figure's answer whatever the matrix
    assert exercises.check_proximal_jacobian(lambda a, lam: right(a, lam) / lam) is False
    from mamlbook.demos import imaml_lambda

    figure = imaml_lambda.figure_data(lam=0.5)["jacobian"]
    assert torch.allclose(right(imaml_lambda.task()[0].double(), 0.5), figure.double(), atol=1e-12)
    capsys.readouterr()
    assert exercises.check_proximal_jacobian(lambda a, lam: figure) is False
    assert "3x3 task, lambda = 0.1" in capsys.readouterr().out  # right for the chapter's task, wrong for the next
    assert exercises.check_proximal_jacobian(lambda a, lam: None) is False


def test_null_space_projector():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 5, generator=g, dtype=torch.float64)
    right = torch.eye(5, dtype=torch.float64) - torch.linalg.pinv(x) @ x
    assert exercises.check_null_space_projector(right, x) is True
    assert exercises.check_null_space_projector(torch.linalg.pinv(x) @ x, x) is False  # the row space
    # (I + H/λ)⁻¹ for a small λ is close to it
    near = torch.linalg.inv(torch.eye(5, dtype=torch.float64) + x.T @ x / 1e-9)
    assert exercises.check_null_space_projector(near, x) is True
    # without a design: the exercise's (chapter 06's design() of seed 0's inputs), as the grader checks it
    design = exercises.underdetermined_design()
    inputs = torch.randn(2, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(design, torch.cat([inputs, torch.ones(2, 1, dtype=torch.float64)], -1))
    exact = torch.eye(5, dtype=torch.float64) - torch.linalg.pinv(design) @ design
    assert exercises.check_null_space_projector(exact) is True
    assert exercises.check_null_space_projector(torch.eye(5, dtype=torch.float64)) is False  # X = 0's answer


def test_prototype_accuracy():
    images = torch.rand(30, 20, 6, 6, generator=torch.Generator().manual_seed(0))
    tasks = mb.ClassificationTasks(images, ways=5).sample(7, 5, 3, generator=torch.Generator().manual_seed(1))
    t = tasks.num_tasks
    prototypes = tasks.x_support.flatten(2).view(t, 5, 5, -1).mean(2)  # the chapter's solution
    similarity = torch.nn.functional.normalize(tasks.x_query.flatten(2), dim=-1) @ \
        torch.nn.functional.normalize(prototypes, dim=-1).transpose(1, 2)
    right = (similarity.argmax(-1) == tasks.y_query).float().mean(1)
    assert exercises.check_prototype_accuracy(right, tasks) is True
    euclidean = torch.cdist(tasks.x_query.flatten(2), prototypes).argmin(-1)
    wrong = (euclidean == tasks.y_query).float().mean(1)
    if not torch.equal(wrong, right):
        assert exercises.check_prototype_accuracy(wrong, tasks) is False
    assert exercises.check_prototype_accuracy(torch.ones(t), tasks) is False
    assert exercises.check_prototype_accuracy(..., tasks) is False
