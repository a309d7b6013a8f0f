"""Helpers shared by the test modules (imported as ``from helpers import ...``; the
fixtures stay in conftest.py, which pytest loads by itself)."""
import pytest
import torch


def flat(params):
    return torch.cat([v.reshape(-1) for v in params.values()])


def unflat(vector, like):
    out, i = {}, 0
    for k, v in like.items():
        out[k] = vector[i:i + v.numel()].view_as(v)
        i += v.numel()
    return out


def central_difference(f, params, eps=1e-6):
    """Gradient of scalar f(params) by central differences over every coordinate (float64)."""
    theta = flat(params).detach().clone()
    grad = torch.zeros_like(theta)
    for i in range(theta.numel()):
        e = torch.zeros_like(theta)
        e[i] = eps
        grad[i] = (f(unflat(theta + e, params)) - f(unflat(theta - e, params))) / (2 * eps)
    return grad


def relative_error(got, want):
    """max |got − want| / max |want|: the worst error relative to the gradient's scale."""
    return float((got - want).abs().max() / want.abs().max())


def mse(model, params, x, y):
    """The mean squared error of ``model`` with ``params`` on one task's ``x``, ``y``: the plain,
    unbatched computation the per-task reference loops are written with."""
    from torch.func import functional_call

    return ((functional_call(model, params, (x,)) - y) ** 2).mean()


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; this machine has none")
