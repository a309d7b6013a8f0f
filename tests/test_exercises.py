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
}


@pytest.mark.parametrize("name", sorted(RIGHT_AND_WRONG))
def test_checker_accepts_right_and_rejects_wrong(name, capsys):
    right, wrong = RIGHT_AND_WRONG[name]
    check = getattr(exercises, name)
    assert check(right) is True
    assert capsys.readouterr().out.startswith("correct")
    assert check(wrong) is False
    assert capsys.readouterr().out.startswith("mismatch: ")


def test_checker_explains_shape_and_key_mistakes(capsys):
    assert exercises.check_inner_step(lambda p, g, lr: {k: v for k, v in list(p.items())[:2]}) is False
    assert "expected keys" in capsys.readouterr().out
    assert exercises.check_maml_one_step_gradient(lambda h, g, lr: g[:3]) is False
    assert "shape (3,)" in capsys.readouterr().out
    assert exercises.check_inner_step(lambda p, g, lr: None) is False
    assert "got NoneType" in capsys.readouterr().out
