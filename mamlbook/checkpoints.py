"""Saving and loading meta-learned parameters.

Files hold ``{"architecture": str, "params": {name: tensor}, "metadata": dict,
"checksum": "sha256:…"}``. Writes are atomic (a temporary file renamed into place),
loading uses ``torch.load(weights_only=True)`` (no code execution from a file), and
every way a file can be unusable raises `CheckpointError` (a ValueError) naming the
path and what is wrong: not a torch file, truncated, a corrupted pickle, not a
mamlbook checkpoint, a checksum that does not match (flipped bytes), NaN/inf weights,
another architecture, other parameter names or shapes.

The checksum is a SHA-256 over the architecture, every parameter's name, dtype, shape
and bytes, and the metadata (`weights_checksum`). Files written before checksums
existed have none and are refused; one you trust can be given a checksum, its weights
unchanged, with `add_checksum` (the shipped checkpoints were converted that way).
"""
from __future__ import annotations

import hashlib
import io
import numbers
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.torch_version import TorchVersion

from . import checks
from .checks import CheckpointError
from .functional import Params

PRETRAINED_DIR = Path(__file__).parent / "pretrained"


def _architecture(model: nn.Module) -> str:
    return getattr(model, "architecture", type(model).__name__)


def save_checkpoint(path: str | os.PathLike, model: nn.Module, params: Params | None = None,
                    metadata: dict | None = None) -> Path:
    """Save ``params`` (default: the model's own) for ``model``'s architecture, atomically, with a checksum.

    ``params`` must have the model's parameter names and shapes and be finite, and
    ``path`` must name a file (`mamlbook.checks.file_path`); nothing is written otherwise.
    """
    path = checks.file_path("path", path)
    checks.module("model", model)
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict of plain data, got {type(metadata).__name__}")
    params = params if params is not None else dict(model.named_parameters())
    checks.params("params", params, model)
    payload = {
        "architecture": _architecture(model),
        "params": {k: v.detach().cpu().clone() for k, v in params.items()},
        "metadata": _plain_data(dict(metadata or {}), "metadata"),
    }
    _write(path, payload)
    return path


def _require_file(path: Path) -> None:
    """FileNotFoundError naming ``path`` unless it is a file (saying so for a directory)."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint path {str(path)!r} "
                                + ("is a directory, not a checkpoint file" if path.is_dir() else "does not exist"))


def _write(path: Path, payload: dict) -> None:
    """``payload`` plus its checksum, written atomically to ``path``."""
    payload = dict(payload)
    payload["checksum"] = weights_checksum(payload["architecture"], payload["params"], payload["metadata"])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    except OSError as err:  # name the checkpoint, not the temporary file it is written through
        raise OSError(err.errno, f"cannot write checkpoint {str(path)!r} in {str(path.parent)!r} "
                                 f"({err.strerror or err})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.chmod(tmp, 0o644)  # mkstemp makes files private (0600); a checkpoint is meant to be read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def weights_checksum(architecture: str, params: Params, metadata: dict) -> str:
    """``"sha256:<hex>"`` of the architecture, each parameter (name, dtype, shape, bytes) in order, and the metadata."""
    digest = hashlib.sha256()
    _digest(digest, architecture)
    _digest(digest, params)
    _digest(digest, metadata)
    return "sha256:" + digest.hexdigest()


def _digest(digest, value) -> None:
    """Feed a canonical encoding of plain data (tensors included) to ``digest``; other types raise TypeError."""
    if value is None:
        digest.update(b"N")
    elif isinstance(value, bool):
        digest.update(b"B1" if value else b"B0")
    elif isinstance(value, str):
        data = str(value).encode()
        digest.update(b"S%d:" % len(data) + data)
    elif isinstance(value, int):
        digest.update(b"I%d;" % value)
    elif isinstance(value, float):
        digest.update(b"F" + float(value).hex().encode() + b";")
    elif isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        digest.update(f"X{t.dtype}{tuple(t.shape)}:".encode())
        dense = torch.empty(t.numel(), dtype=t.dtype).copy_(t.reshape(-1))  # the values in order, whatever the strides
        digest.update(dense.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, (list, tuple)):
        digest.update(b"%s%d:" % (b"L" if isinstance(value, list) else b"T", len(value)))
        for v in value:
            _digest(digest, v)
    elif isinstance(value, dict):
        digest.update(b"D%d:" % len(value))
        for k, v in value.items():
            _digest(digest, k)
            _digest(digest, v)
    else:
        raise TypeError(f"cannot checksum a {type(value).__name__}")


def _plain_data(value, where: str):
    """``value`` as plain data that ``torch.load(weights_only=True)`` accepts; else TypeError naming ``where``.

    str/int/float subclasses (``torch.__version__``, NumPy scalars) become the plain type.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, np.bool_):  # NumPy's bool is not a bool, nor a number
        return bool(value)
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
                    f"it loads with torch.load(weights_only=True); got {_type_name(value)}"
                    + (" (pass str(path))" if isinstance(value, os.PathLike) else ""))


def _type_name(value) -> str:
    """``numpy.bool_``, ``pathlib.PosixPath`` (not ``pathlib._local.PosixPath``, Python 3.13), ``int``."""
    kind = type(value)
    public = ".".join(part for part in kind.__module__.split(".") if not part.startswith("_"))
    return kind.__qualname__ if public in ("builtins", "") else f"{public}.{kind.__qualname__}"


def _read_payload(path: Path) -> dict:
    """The file's dict, read with ``weights_only=True``; any failure is a `CheckpointError` naming ``path``."""
    data = path.read_bytes()  # (a missing or unreadable file raises OSError here, as for any file)
    if not data:
        raise CheckpointError(f"checkpoint {str(path)!r} is empty (0 bytes): not a mamlbook checkpoint; "
                              "was the write interrupted?")
    try:
        # TorchVersion (a str subclass) is allowed so files whose metadata holds torch.__version__ load
        with torch.serialization.safe_globals([TorchVersion]):
            payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (torch raises many types for a damaged file; all mean the same here)
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        # not torch's advice to load with weights_only=False: unsafe, and never needed for a checkpoint
        detail = type(err).__name__ + (f": {first[:200]}" if first and "weights_only" not in first else "")
        kind = ("it is a zip archive but not a complete torch.save file (truncated, damaged, or another "
                "kind of zip)" if data[:2] == b"PK" else "it is not a file written by torch.save")
        raise CheckpointError(f"checkpoint {str(path)!r} ({len(data)} bytes) is not a mamlbook checkpoint that can be "
                              f"read: {kind}; torch.load(weights_only=True) refused it ({detail})") from err
    if not isinstance(payload, dict) or not {"architecture", "params"} <= set(payload):
        keys = sorted(map(str, payload)) if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"checkpoint {str(path)!r} is not a mamlbook checkpoint (it holds {keys}; expected a "
                              "dict with 'architecture', 'params', 'metadata' and 'checksum')")
    return payload


def _verify(path: Path, payload: dict) -> None:
    """Checksum present and matching, parameters a dict of finite floating tensors (else CheckpointError)."""
    saved = payload["params"]
    if not isinstance(saved, dict) or not all(isinstance(v, torch.Tensor) for v in saved.values()):
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupted: its 'params' must be a dict of tensors, got "
                              f"{type(saved).__name__}" + (f" of {sorted({type(v).__name__ for v in saved.values()})}"
                                                           if isinstance(saved, dict) else ""))
    metadata = payload.get("metadata", {})
    if not isinstance(metadata, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupted: its 'metadata' must be a dict, got "
                              f"{type(metadata).__name__}")
    stored = payload.get("checksum")
    if stored is None:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has no checksum (written before mamlbook stored one), so its weights cannot be "
            "verified; if you trust the file, mamlbook.checkpoints.add_checksum(path) adds one without changing them")
    try:
        actual = weights_checksum(payload["architecture"], saved, metadata)
    except Exception as err:  # noqa: BLE001 (an unusable tensor or value from a damaged file)
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupted: {type(err).__name__}: {err}") from err
    if stored != actual:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupted: the checksum of its weights and metadata is "
                              f"{actual}, the file says {stored!r} (flipped bytes, or edited outside mamlbook); "
                              "re-download or regenerate it")
    for name, t in saved.items():
        if not t.is_floating_point():
            raise CheckpointError(f"checkpoint {str(path)!r}: parameter {name!r} has dtype {t.dtype}, not floating point")
        if not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"checkpoint {str(path)!r}: parameter {name!r} holds NaN or inf values "
                                  f"({int((~torch.isfinite(t)).sum())} of {t.numel()}); it was saved from a run "
                                  "that diverged")


def load_checkpoint(path: str | os.PathLike, model: nn.Module, *, into_model: bool = True) -> tuple[Params, dict]:
    """Load parameters saved by `save_checkpoint` for ``model``; copy them into it if ``into_model``.

    Raises FileNotFoundError if ``path`` does not exist, and `CheckpointError` (a
    ValueError) naming the path and what is wrong if the file is unreadable, truncated,
    corrupted (its checksum does not match), holds NaN/inf weights, was made for
    another architecture, or its tensors do not match the model's parameter names and
    shapes. Nothing is copied into the model unless every check passes.
    """
    path = Path(path)
    checks.module("model", model)
    checks.flag("into_model", into_model)
    _require_file(path)
    payload = _read_payload(path)
    _verify(path, payload)
    expected = _architecture(model)
    if payload["architecture"] != expected:
        err = CheckpointError(f"checkpoint {str(path)!r} was saved for architecture {payload['architecture']} but the "
                              f"model's architecture is {expected}; build the model as {payload['architecture']} to load it")
        err.saved_architecture = payload["architecture"]  # for callers that word their own advice (the CLI)
        raise err
    own = dict(model.named_parameters())
    saved = payload["params"]
    if set(saved) != set(own):
        raise CheckpointError(f"checkpoint {str(path)!r} has parameters {sorted(saved)} but the model has {sorted(own)}")
    for name, p in own.items():
        if saved[name].shape != p.shape:
            raise CheckpointError(f"checkpoint {str(path)!r}: parameter {name!r} has shape "
                                  f"{tuple(saved[name].shape)}, the model needs {tuple(p.shape)}")
    params = {name: saved[name].to(device=p.device, dtype=p.dtype) for name, p in own.items()}
    if into_model:
        with torch.no_grad():
            for name, p in own.items():
                p.copy_(params[name])
    return params, dict(payload.get("metadata", {}))


def add_checksum(path: str | os.PathLike) -> Path:
    """Give a checkpoint written before checksums existed its checksum; weights and metadata unchanged.

    Only for files you trust: the checksum vouches for what the file holds now. The
    file is read with ``weights_only=True``, must hold finite tensors, and is rewritten
    atomically. A file that already has a (valid) checksum is left as it is.
    """
    path = Path(path)
    _require_file(path)
    payload = _read_payload(path)
    if payload.get("checksum") is not None:
        _verify(path, payload)
        return path
    _verify(path, {**payload, "checksum": weights_checksum(payload["architecture"], payload["params"],
                                                           payload.get("metadata", {}))})
    _write(path, {"architecture": payload["architecture"], "params": payload["params"],
                  "metadata": payload.get("metadata", {})})
    return path


def pretrained_path(name: str) -> Path:
    """Path of a checkpoint shipped with the book (``mamlbook/pretrained/<name>.pt``)."""
    path = PRETRAINED_DIR / f"{name}.pt"
    if not path.is_file():
        available = sorted(p.stem for p in PRETRAINED_DIR.glob("*.pt"))
        raise FileNotFoundError(f"no shipped checkpoint named {name!r}; available: {available}. "
                                f"Regenerate with `python -m mamlbook regenerate {name}`.")
    return path
