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


def test_loss_history_counts_meta_iterations_when_values_are_sparse():
    fig, axes = plotting.figure()
    plotting.plot_loss_history(axes[0, 0], [3.0, 2.0, 1.0, 0.5], window=2, every=100, label="run")
    raw, smooth = axes[0, 0].get_lines()
    assert list(raw.get_xdata()) == [0, 100, 200, 300]
    assert list(smooth.get_xdata()) == [100, 200, 300]  # the mean of values 0-1 ends at iteration 100
    assert smooth.get_color() == raw.get_color()  # one colour per curve, none given
    with pytest.raises(ValueError, match="every"):
        plotting.plot_loss_history(axes[0, 0], [1.0], every=0)
    plt.close(fig)
    # the axis's label: the first curve's, kept by a second one drawn without one
    fig, axes = plotting.figure(ncols=2)
    plotting.plot_loss_history(axes[0, 0], [3.0, 2.0], window=1, ylabel="training loss")
    plotting.plot_loss_history(axes[0, 0], [1.0, 0.5], window=1)
    assert axes[0, 0].get_ylabel() == "training loss"
    plotting.plot_loss_history(axes[0, 1], [1.0], window=1)
    assert axes[0, 1].get_ylabel() == "meta-loss"
    plt.close(fig)


def test_adaptation_curves_put_the_papers_points_at_their_values():
    import torch

    fig, axes = plotting.figure()
    curves = {"maml": torch.tensor([[1.0, 0.5, 0.4], [1.2, 0.7, 0.5]])}
    plotting.plot_adaptation_curves(axes[0, 0], curves, reference={"maml": [(1, 0.67), (2, 0.38)]})
    (points,) = axes[0, 0].collections[1:]  # after the interval's band
    assert points.get_offsets().tolist() == [[1, 0.67], [2, 0.38]]
    # strings, as a table prints them, would be plotted as categories 0, 1, ...: refused
    with pytest.raises(TypeError, match=r"reference\['maml'\] must hold \(step, value\) pairs of numbers"):
        plotting.plot_adaptation_curves(axes[0, 0], curves, reference={"maml": [(1, "0.67")]})
    plt.close(fig)
