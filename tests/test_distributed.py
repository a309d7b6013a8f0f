"""Sharded meta-training over two gloo processes equals one process on the full meta-batch."""
import datetime
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import mamlbook as mb
from mamlbook.performance import distributed

META_BATCH = 7  # split 4 + 3: the all-reduce must weight the shards by their sizes
OPTIONS = {"maml": {"inner_lr": 0.05, "inner_steps": 2}, "reptile": {"inner_lr": 0.05, "inner_steps": 3}}


class Float64Sinusoids(mb.SinusoidTasks):
    """The sinusoid family in double precision (so that sums in another order agree to ~1e-12)."""

    def sample(self, *args, **kwargs):
        return super().sample(*args, dtype=torch.float64, **kwargs)


def make_model(seed):
    torch.manual_seed(seed)
    return mb.SinusoidMLP(hidden=(8, 8)).double()


def make_tasks():
    return Float64Sinusoids().sample(META_BATCH, 5, 6, generator=torch.Generator().manual_seed(11))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank, world_size, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=60))
    try:
        model = make_model(0)
        params = mb.detached(mb.parameters_of(model))
        steps = {m: distributed.distributed_meta_step(m, model, params, make_tasks(), **o) for m, o in OPTIONS.items()}
        trained = make_model(100 + rank)  # different on each rank: training must start from rank 0's values
        history = distributed.meta_train(trained, Float64Sinusoids(), iterations=4, meta_batch_size=META_BATCH,
                                         support_shots=5, query_shots=6, inner_lr=0.05, inner_steps=2,
                                         generator=torch.Generator().manual_seed(5), progress=False)
        torch.save({"grads": {m: s.grads for m, s in steps.items()},
                    "meta_loss": {m: float(s.meta_loss) for m, s in steps.items()},
                    "trained": {k: v.detach() for k, v in mb.parameters_of(trained).items()},
                    "history": (history.meta_loss, history.support_loss)}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    # fork: the children inherit the imported modules (spawn would import torch twice more)
    mp.start_processes(worker, args=(2, free_port(), str(out)), nprocs=2, join=True, start_method="fork")
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.mark.parametrize("method", sorted(OPTIONS))
def test_two_gloo_processes_give_the_full_batch_meta_gradient(two_processes, method):
    model = make_model(0)
    params = mb.detached(mb.parameters_of(model))
    single = mb.get_method(method)(model, params, make_tasks(), **OPTIONS[method])
    for result in two_processes:
        for k, g in single.grads.items():
            assert torch.allclose(result["grads"][method][k], g, rtol=1e-10, atol=1e-13), k
        assert result["meta_loss"][method] == pytest.approx(float(single.meta_loss), rel=1e-12)


def test_two_gloo_processes_train_like_one(two_processes):
    model = make_model(100)  # rank 0's initial values
    history = mb.meta_train(model, Float64Sinusoids(), iterations=4, meta_batch_size=META_BATCH, support_shots=5,
                            query_shots=6, inner_lr=0.05, inner_steps=2, generator=torch.Generator().manual_seed(5),
                            progress=False)
    for result in two_processes:
        for k, p in mb.parameters_of(model).items():
            assert torch.allclose(result["trained"][k], p.detach(), rtol=1e-9, atol=1e-12), k
        assert result["history"][0] == pytest.approx(history.meta_loss, rel=1e-10)
        assert result["history"][1] == pytest.approx(history.support_loss, rel=1e-10)
    # and the two processes hold exactly the same parameters
    for k in two_processes[0]["trained"]:
        assert torch.equal(two_processes[0]["trained"][k], two_processes[1]["trained"][k])


def test_shard_covers_the_batch_and_checks_its_arguments():
    tasks = make_tasks()
    parts = [distributed.shard(tasks, r, 3) for r in range(3)]
    assert [p.num_tasks for p in parts] == [3, 2, 2]
    assert torch.equal(torch.cat([p.x_support for p in parts]), tasks.x_support)
    with pytest.raises(ValueError, match="world_size"):
        distributed.shard(tasks, 0, META_BATCH + 1)
    with pytest.raises(ValueError, match="rank"):
        distributed.shard(tasks, 2, 2)


def test_meta_train_without_a_process_group_says_how_to_launch():
    if dist.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    with pytest.raises(RuntimeError, match="init_from_environment"):
        distributed.meta_train(make_model(0), Float64Sinusoids(), iterations=1, generator=torch.Generator())
