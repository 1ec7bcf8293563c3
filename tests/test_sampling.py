"""Sampling from a mixture, against its known distribution."""

import numpy as np
import pytest
from scipy import stats

import mdn_tf

P = np.array([[0.2, 0.5, 0.3]])
MU = np.array([[-5.0, 0.0, 4.0]])
SIGMA = np.array([[0.5, 1.0, 2.0]])


def mixture_cdf(y):
    return sum(p * stats.norm.cdf(y, m, s) for p, m, s in zip(P[0], MU[0], SIGMA[0]))


def test_shape_and_reproducibility():
    p, mu, sigma = (np.repeat(a, 7, axis=0) for a in (P, MU, SIGMA))
    a = mdn_tf.sample_from_mixture(p, mu, sigma, samples_per_x=10, rng=np.random.default_rng(3))
    b = mdn_tf.sample_from_mixture(p, mu, sigma, samples_per_x=10, rng=np.random.default_rng(3))
    c = mdn_tf.sample_from_mixture(p, mu, sigma, samples_per_x=10, rng=np.random.default_rng(4))
    assert a.shape == (7, 10)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(a, mdn_tf.sample_from_mixture(p, mu, sigma, 10, rng=3))


def test_a_component_of_zero_width_draws_its_mean():
    # exp(sigma) underflows to 0 in float32 far outside the data (notebook 3's x = +-15)
    p, mu, sigma = [[0.5, 0.5]], [[-3.0, 2.0]], [[0.0, 1.0]]
    draws = mdn_tf.sample_from_mixture(p, mu, sigma, samples_per_x=4000, rng=0)[0]
    at_mean = draws == -3.0
    assert 0.45 < at_mean.mean() < 0.55  # the zero-width component, exactly at its mean
    assert stats.kstest(draws[~at_mean], "norm", args=(2.0, 1.0)).pvalue > 0.01


def test_samples_follow_the_mixture_ks():
    samples = mdn_tf.sample_from_mixture(P, MU, SIGMA, samples_per_x=20_000, rng=0)[0]
    assert stats.kstest(samples, mixture_cdf).pvalue > 0.01
    # while a single Gaussian of similar spread is rejected by the same test
    assert stats.kstest(samples, lambda y: stats.norm.cdf(y, 0, 3)).pvalue < 1e-6


def test_component_frequencies_match_the_weights():
    p = np.array([[0.1, 0.6, 0.3]])
    mu = np.array([[-100.0, 0.0, 100.0]])
    samples = mdn_tf.sample_from_mixture(p, mu, np.ones((1, 3)), samples_per_x=50_000, rng=1)[0]
    freq = np.array([np.mean(samples < -50), np.mean(np.abs(samples) < 50), np.mean(samples > 50)])
    se = np.sqrt(p[0] * (1 - p[0]) / samples.size)
    assert np.all(np.abs(freq - p[0]) < 5 * se)


def test_each_row_uses_its_own_mixture():
    p = np.array([[1.0, 0.0], [0.0, 1.0]])
    mu = np.array([[-10.0, 10.0], [-10.0, 10.0]])
    samples = mdn_tf.sample_from_mixture(p, mu, np.full((2, 2), 0.1), samples_per_x=1000, rng=2)
    assert samples[0].mean() == pytest.approx(-10, abs=0.02)
    assert samples[1].mean() == pytest.approx(10, abs=0.02)


def test_mixture_cdf_matches_scipy_and_makes_uniform_pit(rng):
    p = rng.dirichlet(np.ones(3), size=50)
    mu, sigma = rng.normal(scale=3, size=(50, 3)), np.exp(rng.normal(scale=0.5, size=(50, 3)))
    y = rng.normal(scale=4, size=50)
    expected = np.sum(p * stats.norm.cdf(y[:, None], mu, sigma), axis=1)
    np.testing.assert_allclose(mdn_tf.mixture_cdf(p, mu, sigma, y), expected, rtol=1e-12)
    # the probability integral transform of draws from the mixture itself is uniform
    one = (p[:1].repeat(5000, 0), mu[:1].repeat(5000, 0), sigma[:1].repeat(5000, 0))
    draws = mdn_tf.sample_from_mixture(*one, samples_per_x=1, rng=0)[:, 0]
    assert stats.kstest(mdn_tf.mixture_cdf(*one, draws), "uniform").pvalue > 1e-3
    with pytest.raises(ValueError, match="one output dimension"):
        mdn_tf.mixture_cdf(p, mu[:, :, None].repeat(2, 2), sigma[:, :, None].repeat(2, 2), y)
