"""Numpy functions of the mixtures an MDN predicts: sampling, the exact NLL, density, mode.

One layout everywhere: weights p (N, K); means mu and standard deviations sigma (N, K) for
one output dimension, (N, K, D) for D, each component a diagonal Gaussian

    N(y; mu_k, diag sigma_k^2) = prod_d N(y_d; mu_kd, sigma_kd).
"""

import numpy as np
from scipy.special import logsumexp, ndtr, softmax

from mdn_tf import _checks


def _targets(name, y, p, d):
    """y as (N, d), one row per row of the weights p: (N, d), or (N,) when d = 1."""
    y = _checks.matrix(name, y, width=d)
    _checks.same_length(p_val=p, **{name: y})
    return y


def sample_from_mixture(
    p_val, mu_val, sigma_val, samples_per_x=10, rng=None, temperature=1.0, sigma_temperature=1.0
):
    """Sample y from each row's Gaussian mixture.

    For every row n and draw s: pick component k with probability q[n, k], then
    y[n, s] = mu[n, k] + sqrt(sigma_temperature) * sigma[n, k] * z,  z ~ N(0, I_D), where

        q[n, k] = p[n, k]^(1 / temperature) / sum_j p[n, j]^(1 / temperature)

    (the logits divided by the temperature, as in sketch-rnn and keras-mdn-layer).
    ``temperature`` < 1 sharpens the choice (towards 0 it always picks the heaviest
    component), > 1 flattens it; ``sigma_temperature`` multiplies each variance (0 returns
    the chosen components' means). With both at 1 the draws are those of the plain mixture.

    Args:
        p_val: (N, K) weights (rows sum to 1).
        mu_val, sigma_val: (N, K) means and sigmas >= 0, or (N, K, D). A sigma of 0 (a
            float32 ``exp`` that underflowed, far outside the training data) draws the
            component's mean.
        samples_per_x: draws per row (the article uses 10).
        rng: a ``numpy.random.Generator``, an int seed, or None (fresh entropy).
        temperature: tau > 0 for the component choice.
        sigma_temperature: s >= 0, the factor on every variance.

    Returns:
        float64 array (N, samples_per_x), or (N, samples_per_x, D) for (N, K, D) input.
    """
    p, mu, sigma, _ = _checks.mixture(p_val, mu_val, sigma_val, zero_sigma=True)
    samples_per_x = _checks.positive_int("samples_per_x", samples_per_x)
    temperature = _checks.positive_float("temperature", temperature)
    sigma_temperature = _checks.non_negative_float("sigma_temperature", sigma_temperature)
    if rng is not None and not isinstance(rng, (np.random.Generator, int, np.integer)):
        raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {rng!r}")
    rng = np.random.default_rng(rng)
    if temperature != 1.0:
        with np.errstate(divide="ignore"):  # log 0 = -inf: a weight of 0 stays 0
            p = softmax(np.log(p) / temperature, axis=1)
    n, k = p.shape
    cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)  # (N, K)
    u = rng.uniform(size=(n, samples_per_x, 1))
    comp = np.minimum((u > cdf[:, None, :]).sum(axis=2), k - 1)  # (N, S)
    rows = np.arange(n)[:, None]
    z = rng.standard_normal(size=(n, samples_per_x, mu.shape[2]))
    scale = sigma[rows, comp]  # (N, S, D)
    if sigma_temperature != 1.0:
        scale = np.sqrt(sigma_temperature) * scale
    y = mu[rows, comp] + scale * z
    return y if np.ndim(mu_val) == 3 else y[:, :, 0]


def mixture_log_likelihood(p_val, mu_val, sigma_val, y):
    """log p(y_n) under row n's Gaussian mixture, in log space and without clamps.

        log p(y_n) = logsumexp_k [ log p_nk - sum_d (y_nd - mu_nkd)^2 / (2 sigma_nkd^2)
                                   - sum_d log sigma_nkd - D log(2 pi) / 2 ]

    Finite for any finite y and sigma > 0 (a point 1e4 standard deviations from every
    mean scores about -5e7 instead of log 0), down to where (y - mu) / sigma itself
    overflows float64 (beyond 1e154 standard deviations): that component then scores
    -inf, without a warning.

    Args:
        p_val, mu_val, sigma_val: mixture parameters, as ``sample_from_mixture``.
        y: (N, D) observations; (N,) or (N, 1) when D = 1.

    Returns:
        float64 array (N,).
    """
    p, mu, sigma, d = _checks.mixture(p_val, mu_val, sigma_val)
    y = _targets("y", y, p, d)
    # log 0 = -inf for an unused component, and z * z = inf for a point 1e154 sigmas away,
    # are both the right answer
    with np.errstate(divide="ignore", over="ignore"):
        z = (y[:, None, :] - mu) / sigma  # (N, K, D)
        log_terms = (
            np.log(p)
            - np.sum(0.5 * z * z, axis=2)
            - np.sum(np.log(sigma), axis=2)
            - 0.5 * d * np.log(2 * np.pi)
        )
    return logsumexp(log_terms, axis=1)


def held_out_nll(p_val, mu_val, sigma_val, y):
    """Mean negative log-likelihood of y under per-row mixtures: -mean(mixture_log_likelihood).

    Args and shapes as ``mixture_log_likelihood``; returns a float.
    """
    return float(-np.mean(mixture_log_likelihood(p_val, mu_val, sigma_val, y)))


def mixture_density(p_val, mu_val, sigma_val, y_grid):
    """Density of each row's mixture on a grid of y: sum_k p_k prod_d N(y_d; mu_kd, sigma_kd).

    Args:
        p_val, mu_val, sigma_val: mixture parameters, as ``sample_from_mixture``.
        y_grid: (M,) points for D = 1, (M, D) for D > 1.

    Returns:
        float64 array (N, M).
    """
    p, mu, sigma, d = _checks.mixture(p_val, mu_val, sigma_val)
    y = _checks.matrix("y_grid", y_grid, width=d)  # (M, D)
    z = (y[None, :, None, :] - mu[:, None]) / sigma[:, None]  # (N, M, K, D)
    kernel = np.prod(np.exp(-0.5 * z * z), axis=3)
    norm = np.prod(np.sqrt(2 * np.pi) * sigma[:, None], axis=3)
    return np.sum(p[:, None, :] * kernel / norm, axis=2)


def mixture_cdf(p_val, mu_val, sigma_val, y):
    """P(Y <= y_n) under row n's mixture, one output dimension:

        F(y_n) = sum_k p_nk Phi((y_n - mu_nk) / sigma_nk).

    At observed y this is the probability integral transform: for a calibrated model the
    values are uniform on [0, 1]; an overconfident one piles them near 0 and 1.

    Args:
        p_val, mu_val, sigma_val: (N, K) mixture parameters (or (N, K, 1)).
        y: (N,) or (N, 1) points.

    Returns:
        float64 array (N,) in [0, 1].
    """
    p, mu, sigma, d = _checks.mixture(p_val, mu_val, sigma_val)
    if d != 1:
        raise ValueError(f"mixture_cdf takes one output dimension, got D = {d}")
    y = _targets("y", y, p, 1)
    return np.sum(p * ndtr((y[:, None, :] - mu) / sigma)[:, :, 0], axis=1)


def mixture_mode(p_val, mu_val, sigma_val, tol=1e-9, max_iter=1000, newton_steps=40):
    """The most probable y of each row's mixture: argmax_y sum_k p_k N(y; mu_k, diag sigma_k^2).

    Not the heaviest component's mean: a narrow light component can have the higher peak.
    Fixed-point (mean-shift) iteration from every component mean,

        y_d <- sum_k r_k mu_kd / sigma_kd^2  /  sum_k r_k / sigma_kd^2,
        r_k = p_k N(y; mu_k, diag sigma_k^2),

    which climbs the density to a mode from any start (Carreira-Perpinan 2000), until no
    start moves by more than ``tol`` times the row's smallest sigma; then Newton steps on
    log p(y), each kept only if it raises the density, which finish the climb where the top
    is flat and mean-shift slows down. The mode of highest density wins. (Where a top is
    flat to fourth order, as for two equal components 2 sigma apart, float64 cannot place
    it closer than about 1e-4 sigma: the density there varies by less than its rounding.)

    Args:
        p_val, mu_val, sigma_val: mixture parameters, as ``sample_from_mixture``.
        tol: mean-shift's stopping step, relative to the smallest sigma of the row.
        max_iter: at most this many mean-shift iterations.
        newton_steps: Newton steps after them.

    Returns:
        float64 array (N, D).
    """
    p, mu, sigma, _ = _checks.mixture(p_val, mu_val, sigma_val)
    tol = _checks.positive_float("tol", tol)
    max_iter = _checks.positive_int("max_iter", max_iter)
    newton_steps = _checks.non_negative_int("newton_steps", newton_steps)
    with np.errstate(divide="ignore"):
        log_p = np.log(p)[:, None, :]  # (N, 1, K)
    precision = sigma[:, None] ** -2.0  # (N, 1, K, D)
    log_norm = log_p - np.sum(np.log(sigma), axis=2)[:, None, :]  # (N, 1, K)
    step_tol = tol * sigma.min(axis=(1, 2))[:, None, None]  # (N, 1, 1)

    def log_terms(y):  # y (N, S, D) -> log p_k N(y; mu_k, sigma_k) up to a constant, (N, S, K)
        z = (y[:, :, None, :] - mu[:, None]) * np.sqrt(precision)
        return log_norm - 0.5 * np.sum(z * z, axis=3)

    y = mu.copy()  # (N, S = K, D): one start per component
    for _ in range(max_iter):
        lt = log_terms(y)
        r = np.exp(lt - lt.max(axis=2, keepdims=True))[..., None]  # (N, S, K, 1)
        new = np.sum(r * precision * mu[:, None], axis=2) / np.sum(r * precision, axis=2)
        moved = np.abs(new - y).max(axis=2, keepdims=True)
        y = new
        if np.all(moved <= step_tol):
            break
    log_density = logsumexp(log_terms(y), axis=2)  # (N, S)
    for _ in range(newton_steps):
        w = softmax(log_terms(y), axis=2)[..., None]  # responsibilities (N, S, K, 1)
        a = precision * (mu[:, None] - y[:, :, None, :])  # (N, S, K, D)
        g = np.sum(w * a, axis=2)  # gradient of log p(y), (N, S, D)
        hessian = (
            np.einsum("nsk,nskd,nske->nsde", w[..., 0], a, a)
            - np.einsum("nsd,nse->nsde", g, g)
            - np.einsum("nskd->nsd", w * precision)[..., None] * np.eye(y.shape[2])
        )
        candidate = y - np.einsum("nsde,nse->nsd", np.linalg.pinv(hessian), g)
        candidate_density = logsumexp(log_terms(candidate), axis=2)
        better = candidate_density > log_density
        y = np.where(better[..., None], candidate, y)
        log_density = np.where(better, candidate_density, log_density)
    return y[np.arange(len(y)), log_density.argmax(axis=1)]


def mixture_moments(p_val, mu_val, sigma_val):
    """Mean and standard deviation of each row's mixture, per output dimension:

        E[y_d] = sum_k p_k mu_kd,  Var[y_d] = sum_k p_k (sigma_kd^2 + mu_kd^2) - E[y_d]^2.

    Args:
        p_val, mu_val, sigma_val: mixture parameters, as ``sample_from_mixture``
            (sigma >= 0).

    Returns:
        (mean, std): float64 arrays (N, D).
    """
    p, mu, sigma, _ = _checks.mixture(p_val, mu_val, sigma_val, zero_sigma=True)
    w = p[:, :, None]
    mean = np.sum(w * mu, axis=1)
    spread = np.sum(w * (sigma**2 + (mu - mean[:, None, :]) ** 2), axis=1)  # no cancellation
    return mean, np.sqrt(spread)


def mixture_quantile(p_val, mu_val, sigma_val, q, tol=1e-10):
    """The q-quantiles of each row's mixture, one output dimension: y with F(y) = q.

    F is increasing, so each quantile is found by bisection between the lowest and highest
    ``mu_k -/+ 40 sigma_k`` of the row, to ``tol`` times the row's smallest sigma (or to
    float64's resolution, if that is coarser).

    Args:
        p_val, mu_val, sigma_val: (N, K) mixture parameters (or (N, K, 1)).
        q: probabilities in (0, 1), a scalar or a sequence of Q of them.

    Returns:
        float64 array (N, Q).
    """
    p, mu, sigma, d = _checks.mixture(p_val, mu_val, sigma_val)
    if d != 1:
        raise ValueError(f"mixture_quantile takes one output dimension, got D = {d}")
    q = np.atleast_1d(_checks.finite_array("q", q)).astype(float)
    if q.ndim != 1 or np.any(q <= 0) or np.any(q >= 1):
        raise ValueError(f"q must be probabilities strictly between 0 and 1, got {q}")
    mu, sigma = mu[:, :, 0], sigma[:, :, 0]
    lo = np.repeat((mu - 40 * sigma).min(axis=1, keepdims=True), len(q), axis=1)  # (N, Q)
    hi = np.repeat((mu + 40 * sigma).max(axis=1, keepdims=True), len(q), axis=1)
    step = tol * sigma.min(axis=1, keepdims=True)
    for _ in range(200):  # halving the bracket: 200 steps reach float64's resolution
        if np.all(hi - lo <= step):
            break
        mid = 0.5 * (lo + hi)
        cdf = np.sum(p[:, None, :] * ndtr((mid[:, :, None] - mu[:, None]) / sigma[:, None]), axis=2)
        below = cdf < q
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)
