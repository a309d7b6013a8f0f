"""Every method on a CUDA device gives the CPU's meta-gradient (skipped on a machine without one).

The compiled step's CUDA test is in test_compiled.py.
"""
import pytest
import torch

import mamlbook as mb
from helpers import cuda, flat


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("method, inner_steps", [("maml", 2), ("fomaml", 2), ("reptile", 3), ("imaml", 10)])
def test_method_on_cuda_matches_cpu(small_model, tasks64, method, inner_steps):
    params = mb.detached(mb.parameters_of(small_model))
    cpu = mb.get_method(method)(small_model, params, tasks64, inner_lr=0.05, inner_steps=inner_steps)
    dev = torch.device("cuda")
    gpu = mb.get_method(method)(small_model.to(dev), {k: v.to(dev) for k, v in params.items()}, tasks64.to(dev),
                                inner_lr=0.05, inner_steps=inner_steps)
    assert torch.allclose(flat(gpu.grads).cpu(), flat(cpu.grads), rtol=1e-8, atol=1e-10)
    assert gpu.diagnostics.keys() == cpu.diagnostics.keys()
    for key, value in gpu.diagnostics.items():
        assert torch.allclose(value.cpu().double(), cpu.diagnostics[key].double(), rtol=1e-6, atol=1e-12), key
