"""Saving and loading meta-learned parameters.

Files hold ``{"architecture": str, "params": {name: tensor}, "metadata": dict}``.
Writes are atomic (a temporary file renamed into place), loading uses
``torch.load(weights_only=True)`` (no code execution from a file), and a file made
for another architecture is refused with a message that says what differs.
"""
from __future__ import annotations

import numbers
import os
import pickle
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.torch_version import TorchVersion

from .functional import Params

PRETRAINED_DIR = Path(__file__).parent / "pretrained"


def save_checkpoint(path: str | os.PathLike, model: nn.Module, params: Params | None = None,
                    metadata: dict | None = None) -> Path:
    """Save ``params`` (default: the model's own) for ``model``'s architecture, atomically."""
    path = Path(path)
    params = params if params is not None else dict(model.named_parameters())
    payload = {
        "architecture": getattr(model, "architecture", type(model).__name__),
        "params": {k: v.detach().cpu().clone() for k, v in params.items()},
        "metadata": _plain_data(dict(metadata or {}), "metadata"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.chmod(tmp, 0o644)  # mkstemp makes files private (0600); a checkpoint is meant to be read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _plain_data(value, where: str):
    """``value`` as plain data that ``torch.load(weights_only=True)`` accepts; else TypeError naming ``where``.

    str/int/float subclasses (``torch.__version__``, NumPy scalars) become the plain type.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, (list, tuple)):
        items = [_plain_data(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {_plain_data(k, f"{where} key {k!r}"): _plain_data(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise TypeError(f"{where} must hold plain data (str, int, float, bool, None, list, tuple, dict, tensor) so that "
                    f"it loads with torch.load(weights_only=True); got {type(value).__name__}")


def load_checkpoint(path: str | os.PathLike, model: nn.Module, *, into_model: bool = True) -> tuple[Params, dict]:
    """Load parameters saved by `save_checkpoint` for ``model``; copy them into it if ``into_model``.

    Raises ValueError if the file was made for another architecture or its tensors do
    not match the model's parameter names and shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint path {str(path)!r} does not exist")
    try:
        # TorchVersion (a str subclass) is allowed so files whose metadata holds torch.__version__ load
        with torch.serialization.safe_globals([TorchVersion]):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        raise ValueError(f"checkpoint {str(path)!r} is not a mamlbook checkpoint: torch.load(weights_only=True) "
                         f"refused it ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from err
    if not isinstance(payload, dict) or not {"architecture", "params"} <= set(payload):
        raise ValueError(f"checkpoint {str(path)!r} is not a mamlbook checkpoint (keys: {sorted(payload) if isinstance(payload, dict) else type(payload).__name__})")
    expected = getattr(model, "architecture", type(model).__name__)
    if payload["architecture"] != expected:
        raise ValueError(f"checkpoint {str(path)!r} was saved for architecture {payload['architecture']} but the "
                         f"model's architecture is {expected}; build the model as {payload['architecture']} to load it")
    own = dict(model.named_parameters())
    saved = payload["params"]
    if set(saved) != set(own):
        raise ValueError(f"checkpoint {str(path)!r} has parameters {sorted(saved)} but the model has {sorted(own)}")
    for name, p in own.items():
        if saved[name].shape != p.shape:
            raise ValueError(f"checkpoint {str(path)!r}: parameter {name!r} has shape {tuple(saved[name].shape)}, the model needs {tuple(p.shape)}")
    params = {name: saved[name].to(device=p.device, dtype=p.dtype) for name, p in own.items()}
    if into_model:
        with torch.no_grad():
            for name, p in own.items():
                p.copy_(params[name])
    return params, dict(payload.get("metadata", {}))


def pretrained_path(name: str) -> Path:
    """Path of a checkpoint shipped with the book (``mamlbook/pretrained/<name>.pt``)."""
    path = PRETRAINED_DIR / f"{name}.pt"
    if not path.is_file():
        available = sorted(p.stem for p in PRETRAINED_DIR.glob("*.pt"))
        raise FileNotFoundError(f"no shipped checkpoint named {name!r}; available: {available}. "
                                f"Regenerate with `python -m mamlbook regenerate {name}`.")
    return path
