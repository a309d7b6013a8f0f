"""Device choice and seeding: the two helpers every chapter calls first.

`get_device()` picks CUDA when it is available; the environment variable
``MAMLBOOK_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ...) overrides the choice.
`seed_everything(seed)` fixes Python's, NumPy's and torch's generators, so that a
chapter's numbers are the same on every CPU run. `reproducible_cpu()` holds the two CPU
settings a long training's bits also depend on (threads, oneDNN's instruction set).
"""
from __future__ import annotations

import contextlib
import os
import platform
import random

import numpy as np
import torch

ENV_VAR = "MAMLBOOK_DEVICE"


def get_device(prefer: str | None = None) -> torch.device:
    """Return the device to compute on.

    Order: the ``prefer`` argument, then ``$MAMLBOOK_DEVICE``, then ``cuda`` if
    available, else ``cpu``. Asking for a device the machine lacks (CUDA on a machine
    without it) is an error (`check_device`), not a silent fallback.
    """
    if prefer is not None:  # an empty name too: refused by check_device, not taken as "not given"
        return check_device("device", prefer)
    if os.environ.get(ENV_VAR):
        return check_device(f"${ENV_VAR}", os.environ[ENV_VAR])
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_device(name: str, value) -> torch.device | None:
    """``None`` (the caller's default), or argument ``name``'s ``value`` as a `torch.device`
    this machine has; anything else is a ValueError naming the argument (torch's own
    errors, an AssertionError for CUDA on a CPU build, name neither)."""
    if value is None:
        return None
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(f"{name} {value!r} is not a torch device; use cpu, cuda or cuda:N (an index), "
                         "mps, ...") from None
    if device.type not in ("cpu", "cuda", "mps"):  # e.g. meta: no data, fails deep inside torch later
        raise ValueError(f"{name} {value!r}: the package runs on cpu, cuda (cuda:N) or mps, not {device.type}")
    if device.type == "cpu" and device.index not in (None, 0):  # torch ignores a CPU index: refuse it
        raise ValueError(f"{name} {value!r}: the CPU has no device index; use cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name} {value!r} was requested but CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"{name} {value!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                         f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name} {value!r} was requested but MPS is not available on this machine")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a CPU ``torch.Generator``.

    The returned generator is what task samplers take, so that data does not depend
    on how many random numbers the model's initialisation drew.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an int in [0, 2**64 - 1] (what torch.manual_seed takes), got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


#: The instruction set oneDNN's CPU kernels are capped at to reproduce the shipped checkpoints.
ONEDNN_MAX_CPU_ISA = "AVX2"
#: MKL's cap, through its conditional numerical reproducibility mode (``$MKL_CBWR``).
MKL_CBWR = "AVX2"


def cap_cpu_kernels() -> str:
    """Set ``$ONEDNN_MAX_CPU_ISA`` to `ONEDNN_MAX_CPU_ISA` and ``$MKL_CBWR`` to `MKL_CBWR`
    where unset; refuse other values. Returns the oneDNN cap.

    oneDNN (convolutions) and MKL (matrix products) read their variable once, at the
    process's first call: a cap set later is silently ignored, so call this first
    (``python -m mamlbook regenerate`` does). MKL's cap matters on CPUs where MKL
    has its own kernels: on an Intel Sapphire Rapids CPU (AMX), with oneDNN capped but
    MKL free, the 1,000-iteration MAML recipe is another network at iteration 250
    (64.68% held out instead of the shipped run's 66.52%; 66.52% with both capped).
    """
    for variable, cap in (("ONEDNN_MAX_CPU_ISA", ONEDNN_MAX_CPU_ISA), ("MKL_CBWR", MKL_CBWR)):
        value = os.environ.setdefault(variable, cap)
        if value.upper() != cap:
            raise ValueError(f"{variable} must be unset or {cap} to train a shipped recipe bit for bit, "
                             f"got {value!r}")
    return os.environ["ONEDNN_MAX_CPU_ISA"]


@contextlib.contextmanager
def reproducible_cpu(device: torch.device):
    """On a CPU: one intra-op thread (restored after), oneDNN and MKL capped at AVX2.

    These settings reproduce the shipped checkpoints (``regenerate omniglot_maml_1shot
    --check`` passed bit for bit; the 1,000-iteration recipe retraces its shipped curve
    at iteration 250, tested, on a CPU with AMX too), except the 64-filter ones, trained
    before MKL was capped (mamlbook/recipes/registry.py). A training run's
    bits depend on them, not only on its seed: oneDNN picks convolution kernels by the
    CPU's instruction set (AVX2, AVX-512, ...) and splits them over the threads, and
    each choice rounds differently; over hundreds of iterations the difference grows
    into another network. Measured on the 1,000-iteration MAML recipe at iteration 250
    (held-out accuracy): 66.52% with AVX2 and one thread (the shipped run), 65.56% with
    AVX-512, 66.16% with AVX2 on two threads. AVX2 is the cap because every x86-64 CPU
    of the last decade has it; MKL is capped likewise (`cap_cpu_kernels`, which says
    when the caps take effect). The caps do not make every CPU agree: on an AMD EPYC a
    sinusoid recipe retrains into another network (README, "Regenerating"), hence
    `cpu_name` in every trained checkpoint's metadata.
    Other devices are left as they are.
    """
    if torch.device(device).type != "cpu":
        yield
        return
    cap_cpu_kernels()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def describe_device(device: torch.device) -> str:
    """One line for a chapter's setup cell: device, torch version, threads."""
    device = check_device("device", device)
    if device is None:
        raise ValueError("device must be a torch device or its name (cpu, cuda, ...), got None")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    threads = torch.get_num_threads()
    return f"device={device} ({name}), torch {torch.__version__}, {threads} thread{'s' if threads > 1 else ''}"


def cpu_name() -> str:
    """The host CPU's model name (Linux's /proc/cpuinfo, else `platform`), recorded with
    each trained checkpoint: its bits depend on the CPU (`reproducible_cpu`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
