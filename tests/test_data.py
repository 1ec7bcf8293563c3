"""The data generator and the numerical references derived from it."""

import numpy as np
import pytest
from scipy import stats

import mdn_tf
from mdn_tf.truth import marginal_density


def test_shapes_dtype_and_range():
    x_data, y_data = mdn_tf.make_sine_data(1000, seed=0)
    assert x_data.shape == y_data.shape == (1000, 1)
    assert x_data.dtype == y_data.dtype == np.float32
    assert -10.5 <= x_data.min() and x_data.max() <= 10.5


def test_same_seed_same_data_other_seed_other_data():
    a = mdn_tf.make_sine_data(50, seed=7)
    b = mdn_tf.make_sine_data(50, seed=7)
    c = mdn_tf.make_sine_data(50, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_statistics_over_100k_points():
    """x ~ U(-10.5, 10.5) and y - f(x) ~ N(0, 1): moments and KS tests, fixed seed."""
    x_data, y_data = mdn_tf.make_sine_data(100_000, seed=1)
    x = x_data[:, 0].astype(np.float64)
    r = y_data[:, 0] - mdn_tf.sine_curve(x)
    n = len(x)
    assert abs(x.mean()) < 5 * (21 / np.sqrt(12)) / np.sqrt(n)
    assert x.var() == pytest.approx(21**2 / 12, rel=0.02)
    assert abs(r.mean()) < 5 / np.sqrt(n)
    assert r.std() == pytest.approx(1.0, abs=0.01)
    assert stats.kstest(x, stats.uniform(-10.5, 21).cdf).pvalue > 0.01
    # y was rounded to float32: residuals carry ~1e-6 of rounding, far below the KS resolution
    assert stats.kstest(r, "norm").pvalue > 0.01


def test_sine_curve_values():
    np.testing.assert_allclose(mdn_tf.sine_curve([0.0, 2 * np.pi / 1.5]), [0.0, np.pi / 1.5])
    assert mdn_tf.sine_curve(2.0) == pytest.approx(7 * np.sin(1.5) + 1.0)


def test_swap_axes_swaps():
    x_data, y_data = mdn_tf.make_sine_data(10, seed=0)
    a, b = mdn_tf.swap_axes(x_data, y_data)
    assert a is y_data and b is x_data


def test_inverse_branches_solve_the_curve():
    for x0 in (-12.0, -8.0, -0.3, 0.0, 3.0, 9.5):
        branches = mdn_tf.inverse_branches(x0)
        assert len(branches) >= 1
        np.testing.assert_allclose(mdn_tf.sine_curve(branches), x0, atol=1e-3)
        assert np.all(np.diff(branches) > 0)
    at_zero = mdn_tf.inverse_branches(0.0)
    np.testing.assert_allclose(at_zero, [-7.61, -4.64, 0.0, 4.64, 7.61], atol=0.01)
    assert mdn_tf.inverse_branches(20.0).size == 0  # above the curve's maximum


def test_inverse_density_is_a_density():
    y = np.linspace(-10.5, 10.5, 4001)
    dens = mdn_tf.inverse_density([-5.0, 0.0, 7.0], y)
    np.testing.assert_allclose(np.trapezoid(dens, y, axis=1), 1.0, atol=1e-4)
    xs = np.linspace(-30, 30, 3001)
    assert np.trapezoid(marginal_density(xs)[:, 0], xs) == pytest.approx(1.0, abs=1e-6)


def test_inverse_mean_matches_monte_carlo():
    """E[y | x] by integration against the mean of simulated y in a thin slice of x."""
    y_mc, x_mc = mdn_tf.make_sine_data(1_000_000, seed=3)
    for x0 in (-6.0, 0.5, 4.0):
        in_slice = np.abs(x_mc[:, 0] - x0) < 0.05
        assert in_slice.sum() > 1000
        mc = y_mc[in_slice, 0].mean()
        se = y_mc[in_slice, 0].std() / np.sqrt(in_slice.sum())
        assert mdn_tf.inverse_mean([x0])[0] == pytest.approx(mc, abs=5 * se + 0.02)
