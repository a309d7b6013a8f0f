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
