"""mamlbook.plotting: one width for every figure, the book style, inline figures in a kernel."""
import matplotlib
import matplotlib.pyplot as plt
import pytest

from mamlbook import plotting


@pytest.mark.parametrize("ncols, nrows", [(1, 1), (2, 1), (4, 2), (10, 6)])
def test_every_figure_is_book_width(ncols, nrows):
    fig, axes = plotting.figure(ncols=ncols, nrows=nrows)
    assert fig.get_size_inches()[0] == pytest.approx(plotting.BOOK_WIDTH)
    assert axes.shape == (nrows, ncols)
    plt.close(fig)


def test_style_applied_outside_a_kernel():
    plotting.use_book_figures()
    assert matplotlib.rcParams["figure.figsize"] == [plotting.BOOK_WIDTH, 3.2]
    with pytest.raises(ValueError, match="fmt"):
        plotting.use_book_figures("jpeg")
