"""Draw points from the mixtures an MDN predicts."""

import numpy as np

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
