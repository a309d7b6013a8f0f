"""The procedural glyph data set: deterministic, well-formed, cached, split without overlap."""
import pytest
import torch

from mamlbook.tasks import glyphs


def test_same_seed_same_bytes_whatever_the_chunk():
    a = glyphs.generate_glyphs(12, 4, seed=3)
    b = glyphs.generate_glyphs(12, 4, seed=3, chunk=5)
    assert a.dtype == torch.uint8 and a.shape == (12, 4, 28, 28)
    assert torch.equal(a, b)
    assert not torch.equal(a, glyphs.generate_glyphs(12, 4, seed=4))


def test_other_image_sizes():
    small = glyphs.generate_glyphs(6, 3, seed=0, size=16)
    assert small.shape == (6, 3, 16, 16)


def test_drawings_are_ink_on_paper_and_differ_within_a_class():
    x = glyphs.generate_glyphs(20, 5, seed=1).float() / 255
    ink = x.flatten(2).mean(-1)  # (classes, drawings)
    assert (ink > 0.02).all() and (ink < 0.5).all(), "every drawing has some ink, none is a blot"
    assert x.amax(dim=(2, 3)).min() > 0.9, "strokes reach full intensity"
    edge = torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], -1)
    assert edge.mean() < 0.02, "characters stay inside the frame"
    # drawings of one class are distinct (distortion), and closer to each other than to other classes
    flat = x.flatten(2)
    assert (flat[:, 0] - flat[:, 1]).abs().sum(-1).min() > 0
    within = torch.cdist(flat, flat).mean()
    between = torch.cdist(flat[:, 0], flat[:, 0]).mean()
    assert within < between


def test_splits_are_disjoint_and_sized_like_omniglot(monkeypatch):
    total = glyphs.BACKGROUND_CLASSES + glyphs.EVALUATION_CLASSES
    tagged = torch.arange(total).view(total, 1, 1, 1).expand(total, 1, 1, 1)  # class index as content
    monkeypatch.setattr(glyphs, "glyph_dataset", lambda seed=0, cache=True: tagged)
    bg, ev = glyphs.load_glyphs("background"), glyphs.load_glyphs("evaluation")
    assert (len(bg), len(ev)) == (964, 659)
    assert set(bg.flatten().tolist()).isdisjoint(ev.flatten().tolist())
    assert len(glyphs.load_glyphs("all")) == 1623
    with pytest.raises(ValueError, match="split must be one of"):
        glyphs.load_glyphs("train")


def test_cache_is_written_reused_and_repaired(monkeypatch, tmp_path):
    monkeypatch.setenv("MAMLBOOK_CACHE", str(tmp_path))
    calls = []
    shape = (glyphs.BACKGROUND_CLASSES + glyphs.EVALUATION_CLASSES, glyphs.DRAWINGS, 28, 28)

    def fake_generate(num_classes, drawings, *, seed, size):
        calls.append(seed)
        return torch.full((num_classes, drawings, size, size), seed, dtype=torch.uint8)

    monkeypatch.setattr(glyphs, "generate_glyphs", fake_generate)
    first = glyphs.glyph_dataset(5)
    assert first.shape == shape and calls == [5]
    files = list(tmp_path.glob("glyphs-v*-seed5-*.pt"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))
    assert torch.equal(glyphs.glyph_dataset(5), first) and calls == [5], "second call reads the cache"
    files[0].write_bytes(b"not a tensor")
    assert torch.equal(glyphs.glyph_dataset(5), first) and calls == [5, 5], "a damaged cache is regenerated"
    glyphs.glyph_dataset(5, cache=False)
    assert calls == [5, 5, 5]


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="num_classes"):
        glyphs.generate_glyphs(0, 3)
    with pytest.raises(ValueError, match="size"):
        glyphs.generate_glyphs(3, 3, size=4)
