"""The book's interactive figures, one module each.

Every demo module has the same three layers:

* pure functions that compute the figure's data (tested in ``tests/test_demos.py``);
* ``live(**initial)``: an ipywidgets box that recomputes with those functions (Jupyter);
* ``static(**initial)``: a `StaticDemo` whose ``_repr_html_`` is self-contained HTML +
  JavaScript that stays explorable in the rendered book without a kernel or network.

=========================  ===========================================================
module                     figure
=========================  ===========================================================
`curvature`                FOMAML vs MAML gradient fields on a quadratic, sliders a, b, c, α
`sinusoid_playground`      pretrained vs MAML network fine-tuning on a chosen sinusoid
`landscape`                meta-loss landscape after m = 0..20 inner steps
`reptile_interpolation`    one Reptile update: inner paths and the ε-interpolation
`imaml_lambda`             iMAML's proximal inner problem as λ varies
`directions`               MAML / FOMAML / Reptile / iMAML update fields side by side
`omniglot_game`            the reader against MAML on one-shot tasks of unseen alphabets
=========================  ===========================================================

See ``mamlbook/demos/README.md`` for the calls a chapter makes.
"""
from . import curvature, directions, imaml_lambda, landscape, omniglot_game, reptile_interpolation, sinusoid_playground
from ._html import StaticDemo

DEMOS = ("curvature", "sinusoid_playground", "landscape", "reptile_interpolation", "imaml_lambda", "directions",
         "omniglot_game")

__all__ = ["StaticDemo", "DEMOS", *DEMOS]
