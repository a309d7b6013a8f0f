"""Saving and loading meta-learned parameters: round trip, atomic writes, weights_only, wrong architecture."""
import pytest
import torch

import mamlbook as mb
import mamlbook.checkpoints as checkpoints
from helpers import flat

EXECUTED = []


def _side_effect():
    EXECUTED.append("code from the file ran")
    return {}


class Smuggler:
    """Unpickling this object calls `_side_effect`: the thing weights_only=True must refuse."""

    def __reduce__(self):
        return (_side_effect, ())


def test_round_trip_restores_parameters_and_metadata(tmp_path):
    torch.manual_seed(0)
    model = mb.SinusoidMLP(hidden=(8, 8))
    path = mb.save_checkpoint(tmp_path / "sub" / "run.pt", model, metadata={"method": "reptile", "iterations": 3})
    assert path.is_file()
    fresh = mb.SinusoidMLP(hidden=(8, 8))
    params, metadata = mb.load_checkpoint(path, fresh)
    assert metadata == {"method": "reptile", "iterations": 3}
    assert torch.equal(flat(mb.parameters_of(fresh)), flat(mb.parameters_of(model)))
    assert torch.equal(flat(params), flat(mb.parameters_of(model)))


@pytest.mark.parametrize("where", ["", "folder", "new/", "new/."])
def test_a_path_that_is_not_a_file_is_refused(tmp_path, monkeypatch, where):
    # "" and a folder failed with an OSError about a hidden temporary file; "new/" and "new/." wrote a file "new"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match=r"path must name a file, got '" + where):
        mb.save_checkpoint(where, mb.SinusoidMLP(hidden=(8,)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"] and not any((tmp_path / "folder").iterdir())


@pytest.mark.parametrize("path", [None, 3])
def test_a_path_that_is_no_path_is_named(path):
    with pytest.raises(TypeError, match="path must be a file path .* got "):  # was os.fspath's, naming no argument
        mb.save_checkpoint(path, mb.SinusoidMLP(hidden=(8,)))


def test_explicit_params_and_into_model_false(tmp_path):
    model = mb.SinusoidMLP(hidden=(8, 8))
    params = {k: torch.full_like(v, 0.5) for k, v in mb.parameters_of(model).items()}
    mb.save_checkpoint(tmp_path / "p.pt", model, params)
    target = mb.SinusoidMLP(hidden=(8, 8)).double()
    before = flat(mb.parameters_of(target)).detach().clone()
    loaded, _ = mb.load_checkpoint(tmp_path / "p.pt", target, into_model=False)
    assert torch.equal(flat(mb.parameters_of(target)).detach(), before)  # untouched
    assert all(v.dtype == torch.float64 and bool((v == 0.5).all()) for v in loaded.values())  # cast to the model


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    model = mb.SinusoidMLP(hidden=(8, 8))
    path = mb.save_checkpoint(tmp_path / "run.pt", model, metadata={"version": 1})
    old_bytes = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        mb.save_checkpoint(path, model, metadata={"version": 2})
    assert path.read_bytes() == old_bytes  # the previous checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]  # no temporary file left behind
    monkeypatch.undo()
    assert mb.load_checkpoint(path, model)[1] == {"version": 1}


def test_loading_uses_weights_only(tmp_path, monkeypatch):
    model = mb.SinusoidMLP(hidden=(8, 8))
    path = mb.save_checkpoint(tmp_path / "run.pt", model)
    seen = []
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(checkpoints.torch, "load", spy)
    mb.load_checkpoint(path, model)
    assert seen == [True]


def test_a_file_that_would_run_code_is_refused(tmp_path):
    model = mb.SinusoidMLP(hidden=(8, 8))
    payload = {"architecture": model.architecture,
               "params": {k: v.detach() for k, v in mb.parameters_of(model).items()},
               "metadata": {"note": Smuggler()}}
    torch.save(payload, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="not a mamlbook checkpoint"):
        mb.load_checkpoint(tmp_path / "evil.pt", model)
    assert EXECUTED == []


def test_wrong_architecture_is_refused(tmp_path):
    mb.save_checkpoint(tmp_path / "small.pt", mb.SinusoidMLP(hidden=(8, 8)))
    with pytest.raises(ValueError, match="architecture SinusoidMLP\\(hidden=\\(8, 8\\)\\)"):
        mb.load_checkpoint(tmp_path / "small.pt", mb.SinusoidMLP())


def test_same_name_wrong_shapes_is_refused(tmp_path):
    """A file whose architecture string matches but whose tensors do not (e.g. edited by hand)."""
    model = mb.SinusoidMLP(hidden=(8, 8))
    params = {k: v.detach() for k, v in mb.parameters_of(model).items()}
    params["0.weight"] = torch.zeros(3, 1)
    with pytest.raises(ValueError, match="0.weight"):  # save_checkpoint refuses to write such a file ...
        mb.save_checkpoint(tmp_path / "odd.pt", model, params)
    assert not (tmp_path / "odd.pt").exists()
    # ... so write it as an edited file would be (valid checksum, same architecture string)
    checkpoints._write(tmp_path / "odd.pt", {"architecture": model.architecture, "params": params, "metadata": {}})
    with pytest.raises(mb.CheckpointError, match="0.weight"):
        mb.load_checkpoint(tmp_path / "odd.pt", model)
    del params["0.weight"]
    checkpoints._write(tmp_path / "missing.pt", {"architecture": model.architecture, "params": params, "metadata": {}})
    with pytest.raises(mb.CheckpointError, match="parameters"):
        mb.load_checkpoint(tmp_path / "missing.pt", model)


def test_metadata_is_kept_loadable(tmp_path):
    """torch.__version__ and NumPy scalars become plain types; anything else is refused when saving."""
    import numpy as np

    model = mb.SinusoidMLP(hidden=(8, 8))
    meta = {"torch": torch.__version__, "mse": np.float64(0.25), "steps": np.int64(10), "curve": (1.0, [2, 3]),
            "shift": np.bool_(True)}
    path = mb.save_checkpoint(tmp_path / "m.pt", model, metadata=meta)
    _, loaded = mb.load_checkpoint(path, model)
    assert loaded == {"torch": str(torch.__version__), "mse": 0.25, "steps": 10, "curve": (1.0, [2, 3]), "shift": True}
    assert type(loaded["torch"]) is str and type(loaded["shift"]) is bool and (path.stat().st_mode & 0o777) == 0o644
    with pytest.raises(TypeError, match="metadata\\['bad'\\]"):
        mb.save_checkpoint(tmp_path / "n.pt", model, metadata={"bad": object()})
    with pytest.raises(TypeError, match=r"got pathlib\.(Posix|Windows)Path \(pass str\(path\)\)"):
        mb.save_checkpoint(tmp_path / "n.pt", model, metadata={"data": tmp_path})
    fake = type("PosixPath", (), {"__module__": "pathlib._local"})  # where Python 3.13 defines it
    with pytest.raises(TypeError, match=r"got pathlib\.PosixPath; got|got pathlib\.PosixPath$"):
        mb.save_checkpoint(tmp_path / "n.pt", model, metadata={"data": fake()})  # not pathlib._local.PosixPath
    assert not (tmp_path / "n.pt").exists()
