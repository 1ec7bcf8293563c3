"""Property-based and edge-case checks of the numeric functions (hypothesis, fixed seeds)."""

import math

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import mdn_tf

tf1 = tf.compat.v1
K = 4
finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32)
log_sigmas = st.floats(-12, 12, allow_nan=False, width=32)  # sigma from 6e-6 to 1.6e5
logits = st.floats(-30, 30, allow_nan=False, width=32)  # weights from ~0 to ~1


def mixtures(n=3):
    return st.tuples(
        arrays(np.float64, (n, K), elements=logits),
        arrays(np.float64, (n, K), elements=finite),
        arrays(np.float64, (n, K), elements=log_sigmas),
        arrays(np.float64, (n, 1), elements=finite),
    )


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def losses():
    """Both TF losses and their gradients, built once in their own graph."""
    graph = tf.Graph()
    with graph.as_default():
        y = tf1.placeholder(tf.float32, (None, 1))
        lg, mu, ls = (tf1.placeholder(tf.float32, (None, K)) for _ in range(3))
        article = mdn_tf.mixture_nll(y, tf.nn.softmax(lg), mu, tf.exp(ls))
        stable = mdn_tf.mixture_nll_stable(y, lg, mu, ls)
        fetch = [
            article,
            stable,
            tf.gradients(article, [lg, mu, ls]),
            tf.gradients(stable, [lg, mu, ls]),
        ]
        with tf1.Session(graph=graph) as sess:
            yield lambda a, b, c, d: sess.run(fetch, {lg: a, mu: b, ls: c, y: d})


@pytest.mark.tf
@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(mixtures())
def test_both_losses_and_gradients_stay_finite(losses, params):
    lg, mu, ls, y = params
    article, stable, g_article, g_stable = losses(lg, mu, ls, y)
    assert np.isfinite(article) and np.isfinite(stable)
    # the article's clamps bound each point's loss: -log(1 / (sqrt(2 pi) eps)) <= . <= -log(eps)
    low, high = -math.log(1 / (math.sqrt(2 * math.pi) * 1e-5)), -math.log(1e-5)
    assert low - 1e-3 <= article <= high + 1e-3
    for g in g_article + g_stable:
        assert np.all(np.isfinite(g))


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(mixtures())
def test_held_out_nll_finite_and_above_the_density_bound(params):
    """NLL >= -log of the highest density a mixture can reach: sum_k p_k / (sqrt(2 pi) sigma_k)."""
    lg, mu, ls, y = params
    p, sigma = softmax(lg), np.exp(ls)
    nll = mdn_tf.held_out_nll(p, mu, sigma, y)
    assert np.isfinite(nll)
    peak = np.sum(p / (np.sqrt(2 * np.pi) * sigma), axis=1)
    assert nll >= np.mean(-np.log(peak)) - 1e-9 * max(1.0, abs(nll))


@settings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(mixtures(n=2))
def test_sampling_is_finite_for_valid_mixtures(params):
    lg, mu, ls, _ = params
    samples = mdn_tf.sample_from_mixture(softmax(lg), mu, np.exp(ls), samples_per_x=50, rng=0)
    assert samples.shape == (2, 50) and np.all(np.isfinite(samples))


@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(
    arrays(np.float64, (1, 3), elements=st.floats(-5, 5, width=32)),
    arrays(np.float64, (1, 3), elements=st.floats(-20, 20, width=32)),
    arrays(np.float64, (1, 3), elements=st.floats(-2, 2, width=32)),
)
def test_sample_moments_match_the_mixture(lg, mu, ls):
    p, sigma = softmax(lg), np.exp(ls)
    n = 40_000
    samples = mdn_tf.sample_from_mixture(p, mu, sigma, samples_per_x=n, rng=1)[0]
    mean = np.sum(p * mu)
    var = np.sum(p * (sigma**2 + mu**2)) - mean**2
    # 4th central moment: E(d + sigma Z)^4 = d^4 + 6 d^2 sigma^2 + 3 sigma^4, d = mu - mean
    d = mu - mean
    m4 = np.sum(p * (d**4 + 6 * d**2 * sigma**2 + 3 * sigma**4))
    # six standard errors of the sample mean and of the sample variance
    assert samples.mean() == pytest.approx(mean, abs=6 * math.sqrt(var / n))
    assert samples.var() == pytest.approx(var, abs=6 * math.sqrt((m4 - var**2) / n) + 1e-9)


@pytest.mark.tf
@pytest.mark.parametrize(
    ("lg", "mu", "ls", "y"),
    [
        ([[0.0] * K], [[0.0] * K], [[-40.0] * K], [[1.0]]),  # collapsed sigmas
        ([[0.0] * K], [[0.0] * K], [[40.0] * K], [[1.0]]),  # huge sigmas
        ([[80.0, -80.0, -80.0, -80.0]], [[0.0, 1.0, 2.0, 3.0]], [[0.0] * K], [[0.5]]),  # 1 and 0
        ([[0.0] * K], [[0.0] * K], [[0.0] * K], [[1e4]]),  # far from every mean
    ],
)
def test_edge_cases_finite(losses, lg, mu, ls, y):
    article, stable, g_article, g_stable = losses(lg, mu, ls, y)
    assert np.isfinite(article) and np.isfinite(stable)
    assert all(np.all(np.isfinite(g)) for g in g_article + g_stable)


@pytest.mark.tf
def test_clamp_gives_zero_gradient_below_epsilon(losses):
    """The article's known effect: under the clamp the loss is -log(eps) and nothing moves."""
    article, stable, g_article, g_stable = losses([[0.0] * K], [[0.0] * K], [[0.0] * K], [[8.0]])
    assert article == pytest.approx(-math.log(1e-5), rel=1e-6)  # N(8; 0, 1) = 5e-15 < 1e-5
    assert all(np.all(g == 0) for g in g_article)
    assert stable == pytest.approx(32 + 0.5 * math.log(2 * math.pi), rel=1e-6)
    assert np.all(g_stable[1] < 0)  # the stable loss pulls every mean up towards y = 8
