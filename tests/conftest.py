import pytest
import torch

import mamlbook as mb


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def small_model():
    torch.manual_seed(0)
    return mb.SinusoidMLP(hidden=(8, 8)).double()


@pytest.fixture
def tasks64(generator):
    return mb.SinusoidTasks().sample(4, 5, 7, generator=generator, dtype=torch.float64)


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
