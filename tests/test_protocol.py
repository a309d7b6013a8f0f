"""The book's evaluation protocol (mamlbook.protocol) against independent computations."""

import math
import statistics

import pytest
import torch

import mamlbook as mb
from mamlbook import protocol


def test_the_sinusoid_test_tasks_are_fixed_and_are_the_protocols():
    first, again = protocol.sinusoid_test_tasks(), protocol.sinusoid_test_tasks()
    assert torch.equal(first.x_support, again.x_support) and torch.equal(
        first.y_query, again.y_query
    )
    assert first.x_support.shape == (600, 5, 1) and first.x_query.shape == (600, 100, 1)
    # what the chapters built by hand before: a generator of their own, seed 2017
    by_hand = mb.SinusoidTasks().sample(
        600, 5, 100, generator=torch.Generator().manual_seed(2017)
    )
    assert torch.equal(first.x_support, by_hand.x_support) and torch.equal(
        first.y_query, by_hand.y_query
    )
    other = protocol.sinusoid_test_tasks(seed=1)
    assert not torch.equal(first.x_support, other.x_support)


def test_the_divergence_rule():
    curve = torch.tensor(
        [
            [1.0, 0.5, 0.2],  # adapts
            [1.0, 9.9, 0.1],  # grows 9.9-fold: kept
            [
                1.0,
                10.5,
                0.1,
            ],  # grows beyond tenfold, then recovers: flagged (a threshold)
            [1.0, float("nan"), 1.0],  # NaN at some step
            [2.0, 3.0, float("inf")],  # inf at the end
        ]
    )
    assert protocol.diverged(curve).tolist() == [False, False, True, True, True]
    assert protocol.diverged(curve, factor=11.0).tolist() == [
        False,
        False,
        False,
        True,
        True,
    ]
    assert protocol.diverged(curve).dtype == torch.bool


def test_what_the_module_says_about_the_divergence_rule_on_the_shipped_network():
    """The protocol module's docstring: two tasks flagged, both running away after first dropping below 1; a kept
    task rising to 9.1 times its start; factors 5 and 3 would flag 3 and 10 tasks."""
    model, _ = mb.recipes.load("sinusoid_maml", device="cpu")
    curve = mb.adaptation_curve(model, mb.parameters_of(model), protocol.sinusoid_test_tasks(), inner_lr=0.01,
                                max_steps=10, on_divergence="keep")
    flagged = protocol.diverged(curve)
    assert int(flagged.sum()) == 2
    runs = curve[flagged]
    assert runs[:, 0].round().tolist() == [11.0, 9.0] and (runs[:, 1] < 1).all()
    assert runs[0, -1] == pytest.approx(8.1e6, rel=0.05) and runs[1, -1] == pytest.approx(3.6e26, rel=0.05)
    growth = (curve / curve[:, :1]).amax(1)
    assert round(float(growth[~flagged].max()), 1) == 9.1
    assert [int((growth > factor).sum()) for factor in (5, 3)] == [3, 10]


def test_summarize_matches_an_independent_computation():
    generator = torch.Generator().manual_seed(0)
    curve = torch.rand(50, 4, generator=generator, dtype=torch.float64) + 0.1
    curve[3, 2] = 100.0  # diverged at step 2: left out of every column
    curve[7, 3] = float("nan")
    summary = protocol.summarize(curve, steps=(0, 1, 3))
    kept = [t for t in range(50) if t not in (3, 7)]
    for k in (0, 1, 3):
        values = [float(curve[t, k]) for t in kept]
        s = summary[k]
        assert s.diverged == 2 and s.num_tasks == 50
        assert s.mean == pytest.approx(statistics.fmean(values), rel=1e-12)
        assert s.ci95 == pytest.approx(  # t₀.₉₇₅ with 47 degrees of freedom: 2.011741
            2.011741 * statistics.stdev(values) / math.sqrt(48), rel=1e-6
        )
        assert s.median == pytest.approx(
            sorted(values)[23], rel=1e-12
        )  # torch: the lower median
    assert (
        protocol.format_cell(summary[1])
        == f"{summary[1].mean:.3f} ± {summary[1].ci95:.3f} [2 div.]"
    )


def test_paired_differences_match_a_task_by_task_loop():
    generator = torch.Generator().manual_seed(1)
    shared = torch.rand(120, 1, generator=generator, dtype=torch.float64)  # task difficulty
    curves = {name: shared + 0.1 * torch.rand(120, 3, generator=generator, dtype=torch.float64)
              for name in ("a", "b", "c")}
    curves["b"][5, 1] = float("inf")  # one run diverged on task 5: left out of every pair
    curves["c"][9, 2] = 50.0 * curves["c"][9, 0]  # and another on task 9
    result = protocol.paired_differences(curves, {"a − b": ("a", "b"), "c − a": ("c", "a")}, steps=(0, 2))
    kept = [t for t in range(120) if t not in (5, 9)]
    assert result.kept.tolist() == [t in kept for t in range(120)]
    for label, (x, y) in {"a − b": ("a", "b"), "c − a": ("c", "a")}.items():
        for k in (0, 2):
            diffs = [float(curves[x][t, k]) - float(curves[y][t, k]) for t in kept]
            mean, half, relative, lower = result.cells[label][k]
            assert mean == pytest.approx(statistics.fmean(diffs), rel=1e-12)
            assert half == pytest.approx(1.96 * statistics.stdev(diffs) / math.sqrt(118), rel=1e-12)
            assert relative == pytest.approx(
                statistics.fmean(diffs) / statistics.fmean(float(curves[y][t, k]) for t in kept), rel=1e-12)
            assert lower == sum(d < 0 for d in diffs) / 118
    # pairing removes the spread the runs share: narrower than either run's own interval
    assert result.cells["a − b"][2].ci95 < protocol.summarize(curves["a"], (2,))[2].ci95 / 3


@pytest.mark.parametrize(
    "curves, pairs, steps, match",
    [
        ({}, {"d": ("a", "b")}, (1,), "at least one"),
        ({"a": torch.ones(4, 3)}, {}, (1,), "at least one"),
        ({"a": torch.ones(4, 3), "b": torch.ones(5, 3)}, {"d": ("a", "b")}, (1,), "one shape"),
        ({"a": torch.ones(4, 3), "b": torch.ones(4, 3)}, {"d": ("a", "z")}, (1,), r"pairs\['d'\]"),
        ({"a": torch.ones(4, 3), "b": torch.ones(4, 3)}, {"d": ["a", "b"]}, (1,), r"pairs\['d'\]"),
        ({"a": torch.ones(4, 3), "b": torch.ones(4, 3)}, {"d": ("a", "b")}, (3,), r"steps .* \[0, 2\]"),
        ({"a": torch.ones(2, 3), "b": torch.tensor([[1.0, 1, 1], [1, 1, 99]])}, {"d": ("a", "b")}, (1,),
         "only 1 of 2 tasks"),
    ],
)
def test_paired_differences_bad_input(curves, pairs, steps, match):
    with pytest.raises(ValueError, match=match):
        protocol.paired_differences(curves, pairs, steps=steps)


@pytest.mark.parametrize("steps", [1, (1.0,), (True,)])
def test_paired_differences_and_summarize_refuse_steps_that_are_not_ints(steps):
    curves = {"a": torch.ones(4, 3), "b": torch.ones(4, 3)}
    with pytest.raises(TypeError, match="steps must be a sequence of ints"):
        protocol.paired_differences(curves, {"d": ("a", "b")}, steps=steps)
    with pytest.raises(TypeError, match="steps must be a sequence of ints"):
        protocol.summarize(curves["a"], steps=steps)


def test_summarize_takes_any_iterable_of_steps():
    curve = torch.rand(5, 4, generator=torch.Generator().manual_seed(0)) + 0.5
    assert protocol.summarize(curve, (k for k in (1, 3))) == protocol.summarize(curve, (1, 3))  # not {}


def test_paired_differences_name_the_curve_that_is_wrong():
    with pytest.raises(TypeError, match=r"curves\['b'\]: curve must be a floating-point"):
        protocol.paired_differences({"a": torch.ones(4, 3), "b": torch.ones(4, 3, dtype=torch.long)},
                                    {"d": ("a", "b")}, steps=(1,))


def test_summarize_with_fewer_than_two_tasks_kept():
    curve = torch.tensor([[1.0, 50.0], [1.0, 0.5]])
    s = protocol.summarize(curve, steps=(1,))[1]
    assert s.mean is None and s.ci95 is None and s.diverged == 1
    assert protocol.format_cell(s) == "1 task kept [1 div.]"
    all_gone = protocol.summarize(torch.tensor([[1.0, 50.0], [1.0, 60.0]]), steps=(1,))[1]
    assert protocol.format_cell(all_gone) == "[2 div.]"


@pytest.mark.parametrize(
    "steps, error",
    [((), ValueError), ((0, 5), ValueError), (2, TypeError), ((True,), TypeError)],
)
def test_summarize_refuses_steps_outside_the_curve(steps, error):
    with pytest.raises(error, match="steps"):
        protocol.summarize(torch.ones(3, 3), steps=steps)


def test_mean_and_ci95_closed_form():
    """Student's t below `NORMAL_FROM` values (t₀.₉₇₅ with 3 degrees of freedom: 3.182446,
    from a published table), the normal quantile 1.96 from there on."""
    values = torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64)
    mean, half = protocol.mean_and_ci95(values)
    assert mean == 3.75 and half == pytest.approx(
        3.182446 * statistics.stdev([1, 2, 4, 8]) / 2, rel=1e-6
    )
    below = torch.arange(protocol.NORMAL_FROM - 1, dtype=torch.float64) ** 0.5  # t with 98: 1.984467
    assert protocol.mean_and_ci95(below)[1] == pytest.approx(
        1.984467 * statistics.stdev(below.tolist()) / (protocol.NORMAL_FROM - 1) ** 0.5, rel=1e-6
    )
    many = torch.arange(protocol.NORMAL_FROM, dtype=torch.float64) ** 0.5
    mean, half = protocol.mean_and_ci95(many)
    assert half == pytest.approx(
        1.96 * statistics.stdev(many.tolist()) / protocol.NORMAL_FROM**0.5, rel=1e-12
    )
    assert mb.mean_and_ci95 is protocol.mean_and_ci95  # one home


@pytest.mark.parametrize(
    "p,df,published",  # Student's t table (e.g. NIST/SEMATECH e-Handbook, Table 1.3.6.7.2)
    [(0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 4, 2.776), (0.975, 19, 2.093),
     (0.975, 29, 2.045), (0.975, 98, 1.984), (0.95, 10, 1.812), (0.995, 5, 4.032)],
)
def test_student_t_quantile_matches_published_tables(p, df, published):
    assert protocol.student_t_quantile(p, df) == pytest.approx(published, abs=5e-4)


@pytest.mark.parametrize("p", [0.6, 0.975, 0.9995, 0.99999])
def test_student_t_quantile_matches_the_closed_forms(p):
    """One degree of freedom: Cauchy, tan(π(p − ½)); two: (2p − 1)/√(2p(1 − p)); to 1e-9,
    out in the heavy tails too."""
    assert protocol.student_t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
    assert protocol.student_t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9)


def test_student_t_quantile_is_the_quantile():
    """F(q) = p with F Student's t distribution function, here by Monte Carlo: the ratio
    of a standard normal and √(χ²_df/df), 400,000 draws (the fraction below q within
    five standard errors of p)."""
    g = torch.Generator().manual_seed(0)
    for df in (3, 19):
        z = torch.randn(400_000, generator=g, dtype=torch.float64)
        chi2 = torch.randn(400_000, df, generator=g, dtype=torch.float64).square().sum(1)
        t = z / (chi2 / df).sqrt()
        q = protocol.student_t_quantile(0.975, df)
        assert abs(float((t <= q).double().mean()) - 0.975) < 5 * (0.975 * 0.025 / 400_000) ** 0.5


@pytest.mark.parametrize("p,df,error", [(0.4, 3, "p must"), (1.0, 3, "p must"), (0.975, 0, "df"),
                                        (0.975, 2.5, "df")])
def test_student_t_quantile_rejects_bad_input(p, df, error):
    with pytest.raises((ValueError, TypeError), match=error):
        protocol.student_t_quantile(p, df)


def test_omniglot_accuracy_without_steps_is_the_networks_own():
    """With 0 test steps, adapted_accuracy is the accuracy of the network's own predictions."""
    tasks = protocol.held_out_tasks(1, num_tasks=6)
    torch.manual_seed(0)
    net = mb.ConvNet(ways=5, filters=4)
    params = mb.parameters_of(net)
    got = protocol.adapted_accuracy(
        net, params, tasks, method="maml", inner_lr=0.4, steps=0
    )
    with torch.no_grad():
        logits = mb.task_forward(
            net, mb.batch_parameters(mb.detached(params), 6), tasks.x_query
        )
    expected = (logits.argmax(-1) == tasks.y_query).double().mean(1)
    assert torch.allclose(got.double(), expected)


@pytest.mark.parametrize("method", ["maml", "imaml"])
def test_adapted_logits_do_not_depend_on_the_chunk_size(method):
    """Chunks only bound how many tasks are batched at once (the default, 10, is chosen
    for speed): every task is adapted on its own, so the logits are the same."""
    torch.manual_seed(0)
    net = mb.ConvNet(ways=5, filters=8)
    tasks = protocol.held_out_tasks(1, num_tasks=23, ways=5)
    params = mb.parameters_of(net)
    options = {"lam": 2.0} if method == "imaml" else {}
    logits = {
        chunk: protocol.adapted_logits(net, params, tasks, method=method, inner_lr=0.4, steps=2,
                                       method_options=options, chunk=chunk)
        for chunk in (1, 10, 23, 100)
    }
    assert logits[10].shape == (23, 5, 5)
    for chunk in (1, 23, 100):  # (bit for bit on the book's CPU; kernels may round by batch size elsewhere)
        torch.testing.assert_close(logits[chunk], logits[10], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shots", [0, True])
def test_held_out_tasks_names_its_own_argument(shots):
    """Its errors named support_shots, an argument of the family's sample, not of held_out_tasks."""
    with pytest.raises((ValueError, TypeError)) as info:
        protocol.held_out_tasks(shots)
    assert str(info.value).startswith("shots must")


def test_adapted_accuracy_of_a_model_with_batchnorm_over_each_batch():
    """The label check's probe forward takes a whole support set: on one example, BatchNorm1d without running
    statistics (what checks.module recommends) failed inside torch."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 8),
                              torch.nn.BatchNorm1d(8, track_running_stats=False), torch.nn.ReLU(),
                              torch.nn.Linear(8, 5))
    net.input_shape = (1, 28, 28)
    tasks = protocol.held_out_tasks(1, num_tasks=2)
    accuracy = protocol.adapted_accuracy(net, mb.detached(mb.parameters_of(net)), tasks, method="maml",
                                         inner_lr=0.1, steps=1)
    assert accuracy.shape == (2,) and bool(((accuracy >= 0) & (accuracy <= 1)).all())


def test_adapted_accuracy_takes_the_training_options_it_would_use_anyway():
    """meta_train needs method_options={"loss_fn": cross_entropy_per_task} for classification; the same dict,
    passed on to adapted_accuracy, was refused (it scores with that loss already). Another loss is refused."""
    torch.manual_seed(0)
    net = mb.ConvNet(ways=5, filters=4)
    params, tasks = mb.detached(mb.parameters_of(net)), protocol.held_out_tasks(1, num_tasks=3)
    plain = protocol.adapted_accuracy(net, params, tasks, method="maml", inner_lr=0.4, steps=1)
    same = protocol.adapted_accuracy(net, params, tasks, method="maml", inner_lr=0.4, steps=1,
                                     method_options={"loss_fn": mb.cross_entropy_per_task})
    assert torch.equal(plain, same)
    with pytest.raises(ValueError, match="a 'loss_fn' other than mamlbook.cross_entropy_per_task"):
        protocol.adapted_accuracy(net, params, tasks, method="maml", inner_lr=0.4, steps=1,
                                  method_options={"loss_fn": mb.mse_per_task})
