"""Numpy functions of the mixtures an MDN predicts: sampling and the exact NLL."""

import numpy as np
from scipy.special import logsumexp

from mdn_tf import _checks


def sample_from_mixture(p_val, mu_val, sigma_val, samples_per_x=10, rng=None):
    """Sample y from each row's Gaussian mixture.

    For every row n and draw s: pick component k with probability p[n, k], then
    y[n, s] = mu[n, k] + sigma[n, k] * z,  z ~ N(0, 1).

    Args:
        p_val, mu_val, sigma_val: (N, K) weights (rows sum to 1), means, sigmas > 0.
        samples_per_x: draws per row (the article uses 10).
        rng: a ``numpy.random.Generator``, an int seed, or None (fresh entropy).

    Returns:
        float64 array (N, samples_per_x).
    """
    p, mu, sigma = _checks.mixture(p_val, mu_val, sigma_val)
    samples_per_x = _checks.positive_int("samples_per_x", samples_per_x)
    if rng is not None and not isinstance(rng, (np.random.Generator, int, np.integer)):
        raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {rng!r}")
    rng = np.random.default_rng(rng)
    n, k = p.shape
    cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)  # (N, K)
    u = rng.uniform(size=(n, samples_per_x, 1))
    comp = np.minimum((u > cdf[:, None, :]).sum(axis=2), k - 1)  # (N, S)
    rows = np.arange(n)[:, None]
    z = rng.standard_normal(size=(n, samples_per_x))
    return mu[rows, comp] + sigma[rows, comp] * z


def mixture_log_likelihood(p_val, mu_val, sigma_val, y):
    """log p(y_n) under row n's Gaussian mixture, in log space and without clamps.

        log p(y_n) = logsumexp_k [ log p_nk - (y_n - mu_nk)^2 / (2 sigma_nk^2)
                                   - log sigma_nk - log(2 pi) / 2 ]

    Finite for any finite y and sigma > 0 (a point 1e4 standard deviations from every
    mean scores about -5e7 instead of log 0).

    Args:
        p_val, mu_val, sigma_val: (N, K) mixture parameters, as ``sample_from_mixture``.
        y: (N, 1) or (N,) observations.

    Returns:
        float64 array (N,).
    """
    p, mu, sigma = _checks.mixture(p_val, mu_val, sigma_val)
    y = _checks.column("y", y)
    _checks.same_length(p_val=p, y=y)
    z = (y - mu) / sigma
    with np.errstate(divide="ignore"):  # log 0 = -inf for an unused component is fine
        log_p = np.log(p)
    log_terms = log_p - 0.5 * z * z - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    return logsumexp(log_terms, axis=1)


def held_out_nll(p_val, mu_val, sigma_val, y):
    """Mean negative log-likelihood of y under per-row mixtures: -mean(mixture_log_likelihood).

    Args and shapes as ``mixture_log_likelihood``; returns a float.
    """
    return float(-np.mean(mixture_log_likelihood(p_val, mu_val, sigma_val, y)))


def mixture_density(p_val, mu_val, sigma_val, y_grid):
    """Density of each row's mixture on a grid of y: sum_k p_k N(y; mu_k, sigma_k).

    Args:
        p_val, mu_val, sigma_val: (N, K) mixture parameters.
        y_grid: (M,) points to evaluate at.

    Returns:
        float64 array (N, M).
    """
    p, mu, sigma = _checks.mixture(p_val, mu_val, sigma_val)
    y = _checks.column("y_grid", y_grid)[:, 0]
    z = (y[None, :, None] - mu[:, None, :]) / sigma[:, None, :]  # (N, M, K)
    return np.sum(
        p[:, None, :] * np.exp(-0.5 * z * z) / (np.sqrt(2 * np.pi) * sigma[:, None, :]), axis=2
    )
