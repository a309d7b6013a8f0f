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


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("method", ["anil", "meta_sgd", "mamlpp"])
def test_the_wider_map_on_cuda_matches_cpu(small_model, tasks64, method):
    """ANIL, Meta-SGD and MAML++ (their step sizes live in a wrapper module moved with the network)."""
    model = {"meta_sgd": lambda: mb.MetaSGDNet(small_model), "mamlpp": lambda: mb.LSLRNet(small_model, 2)}.get(
        method, lambda: small_model)()
    params = mb.detached(mb.parameters_of(model))
    options = dict(inner_lr=0.05, inner_steps=2)
    cpu = mb.get_method(method)(model, params, tasks64, **options)
    dev = torch.device("cuda")
    gpu = mb.get_method(method)(model.to(dev), {k: v.to(dev) for k, v in params.items()}, tasks64.to(dev),
                                **options)
    assert torch.allclose(flat(gpu.grads).cpu(), flat(cpu.grads), rtol=1e-8, atol=1e-10)


@cuda
@pytest.mark.cuda
def test_protonet_on_cuda_matches_cpu():
    torch.manual_seed(0)
    net = mb.ConvNet(ways=3, filters=3, blocks=2, image_size=8).double()
    g = torch.Generator().manual_seed(0)
    tasks = mb.TaskBatch(torch.rand(2, 6, 1, 8, 8, generator=g, dtype=torch.float64),
                         torch.tensor([[0, 1, 2, 0, 1, 2]] * 2),
                         torch.rand(2, 3, 1, 8, 8, generator=g, dtype=torch.float64), torch.tensor([[2, 0, 1]] * 2))
    params = mb.detached(mb.parameters_of(net))
    cpu = mb.get_method("protonet")(net, params, tasks, inner_lr=1.0, inner_steps=0)
    dev = torch.device("cuda")
    gpu = mb.get_method("protonet")(net.to(dev), {k: v.to(dev) for k, v in params.items()}, tasks.to(dev),
                                    inner_lr=1.0, inner_steps=0)
    assert torch.allclose(flat(gpu.grads).cpu(), flat(cpu.grads), rtol=1e-8, atol=1e-10)


@cuda
@pytest.mark.cuda
def test_a_cuda_index_the_machine_lacks_is_refused_by_name():
    from mamlbook.device import check_device

    assert check_device("device", "cuda:0") == torch.device("cuda", 0)
    missing = f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(ValueError, match=f"device '{missing}': this machine has"):
        check_device("device", missing)
