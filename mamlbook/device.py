"""Device choice and seeding: the two helpers every chapter calls first.

`get_device()` picks CUDA when it is available; the environment variable
``MAMLBOOK_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ...) overrides the choice.
`seed_everything(seed)` fixes Python's, NumPy's and torch's generators, so that a
chapter's numbers are the same on every CPU run.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

ENV_VAR = "MAMLBOOK_DEVICE"


def get_device(prefer: str | None = None) -> torch.device:
    """Return the device to compute on.

    Order: the ``prefer`` argument, then ``$MAMLBOOK_DEVICE``, then ``cuda`` if
    available, else ``cpu``. Asking for CUDA on a machine without it is an error,
    not a silent fallback.
    """
    choice = prefer or os.environ.get(ENV_VAR)
    if choice:
        try:
            device = torch.device(choice)
        except RuntimeError as err:
            raise ValueError(f"device {choice!r} (from {'prefer' if prefer else ENV_VAR}) is not a torch device: {err}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {choice!r} was requested but CUDA is not available on this machine")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a CPU ``torch.Generator``.

    The returned generator is what task samplers take, so that data does not depend
    on how many random numbers the model's initialisation drew.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def describe_device(device: torch.device) -> str:
    """One line for a chapter's setup cell: device, torch version, threads."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    return f"device={device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads"
