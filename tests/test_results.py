"""mamlbook.results: the measured results the chapters show, shipped as package data."""
import pytest

from mamlbook import results


def test_every_result_the_chapters_read_is_shipped():
    assert {"throughput", "memory", "reproduction", "book_time"} <= set(results.names())
    for name in results.names():
        data = results.load(name)
        assert isinstance(data, dict) and data, name


def test_packaged_with_the_wheel():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(results.__file__).parents[2] / "pyproject.toml").read_text())
    assert "results/*.json" in pyproject["tool"]["setuptools"]["package-data"]["mamlbook"]


@pytest.mark.parametrize("bad", ["memroy", "", "../memory", 3])
def test_unknown_name(bad):
    with pytest.raises(ValueError, match="name must be"):
        results.load(bad)


def test_typo_suggests():
    with pytest.raises(ValueError, match="did you mean 'memory'"):
        results.load("memroy")
