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


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; this machine has none")
