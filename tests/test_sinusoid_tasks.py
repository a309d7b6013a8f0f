"""mamlbook.tasks.sinusoid: the task family of eq. (1.1) and its closed forms, by sampling."""
import math

import torch

import mamlbook as mb


def test_the_family_samples_eq_1_1():
    """Eq. (1.1): A ~ U[0.1, 5], φ ~ U[0, π], x ~ U[−5, 5], y = A sin(x − φ); the sample
    moments against the uniform laws' (mean, E[A²] = (5³ − 0.1³)/(3·4.9), which chapter 01
    uses for the zero predictor's error E[A²]/2 = 4.2517), within five standard errors."""
    n = 200_000
    batch = mb.SinusoidTasks().sample(n, 1, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    amplitude, phase = batch.info["amplitude"], batch.info["phase"]
    x = torch.cat([batch.x_support, batch.x_query]).flatten()
    for values, (low, high) in ((amplitude, (0.1, 5.0)), (phase, (0.0, math.pi)), (x, (-5.0, 5.0))):
        assert low <= float(values.min()) and float(values.max()) <= high
        assert float(values.min()) < low + 1e-3 * (high - low) and float(values.max()) > high - 1e-3 * (high - low)
        mean, sd = (low + high) / 2, (high - low) / math.sqrt(12)
        assert abs(float(values.mean()) - mean) < 5 * sd / math.sqrt(values.numel())
    second_moment = (5**3 - 0.1**3) / (3 * 4.9)
    assert abs(float(amplitude.square().mean()) - second_moment) < 5 * float(amplitude.square().std()) / math.sqrt(n)
    y = amplitude.view(-1, 1, 1) * torch.sin(batch.x_support - phase.view(-1, 1, 1))
    assert torch.equal(batch.y_support, y)


def test_the_pooled_mean_is_eq_1_2():
    """Eq. (1.2): E[y | x] = −(2 E[A]/π) cos x = −1.6234 cos x, against binned sample means."""
    n = 400_000
    batch = mb.SinusoidTasks().sample(n, 1, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x, y = batch.x_support.flatten(), batch.y_support.flatten()
    coefficient = -2 * (0.1 + 5.0) / 2 / math.pi
    bins = torch.linspace(-5, 5, 11, dtype=torch.float64)
    for low, high in zip(bins[:-1], bins[1:]):
        inside = (x >= low) & (x < high)
        expected = coefficient * (torch.sin(high) - torch.sin(low)) / (high - low)  # the mean of cos over the bin
        assert abs(float(y[inside].mean()) - float(expected)) < 5 * float(y[inside].std()) / math.sqrt(int(inside.sum()))


def test_a_task_batch_prints_its_shapes_not_its_numbers():
    tasks = mb.SinusoidTasks().sample(3, 5, 6, generator=torch.Generator().manual_seed(0))
    text = repr(tasks)
    assert text == ("TaskBatch(x_support=(3, 5, 1) float32, y_support=(3, 5, 1) float32, x_query=(3, 6, 1) float32, "
                    "y_query=(3, 6, 1) float32, info={amplitude, phase}, device=cpu)")
