"""Numpy functions of the mixtures an MDN predicts: sampling, the exact NLL, density, mode,
moments, marginals and conditionals.

One layout everywhere: weights p (N, K); means mu and standard deviations sigma (N, K) for
one output dimension, (N, K, D) for D, each component a diagonal Gaussian

    N(y; mu_k, diag sigma_k^2) = prod_d N(y_d; mu_kd, sigma_kd);

or, for full covariances, means (N, K, D) and in sigma's place the lower-triangular
Cholesky factors L (N, K, D, D) with a positive diagonal: N(y; mu_k, L_k L_k^T). Every
function takes either layout in its ``sigma_val`` argument.
"""

import numpy as np
from scipy.special import logsumexp, ndtr, softmax

from mdn_tf import _checks


def _solve(factor, r):
    """z with L z = r by forward substitution: L (..., D, D) lower-triangular, r (..., D),
    broadcasting; returns float64 (...broadcast, D)."""
    d = r.shape[-1]
    z = np.empty(np.broadcast_shapes(factor.shape[:-1], r.shape))
    for i in range(d):
        z[..., i] = (r[..., i] - np.sum(factor[..., i, :i] * z[..., :i], axis=-1)) / factor[
            ..., i, i
        ]
    return z


def _half_distance_and_log_det(dev, sigma):
    """(|z|^2 / 2, log sqrt det Sigma) per component for deviations dev = y - mu (..., D):
    z = dev / sigma for diagonal sigma (..., D), z = L^-1 dev for factors (..., D, D)."""
    if sigma.ndim == dev.ndim:
        z = dev / sigma
        return 0.5 * np.sum(z * z, axis=-1), np.sum(np.log(sigma), axis=-1)
    z = _solve(sigma, dev)
    log_det = np.sum(np.log(np.diagonal(sigma, axis1=-2, axis2=-1)), axis=-1)
    return 0.5 * np.sum(z * z, axis=-1), log_det


def _covariances(sigma):
    """Each component's covariance (N, K, D, D) from sigma (N, K, D) or factors L."""
    if sigma.ndim == 3:
        return sigma[..., :, None] ** 2 * np.eye(sigma.shape[-1])
    return sigma @ np.swapaxes(sigma, -1, -2)


def _one_dimensional(sigma, d, func):
    """sigma as (N, K, 1) for a one-output function (``mixture_cdf``, ``mixture_quantile``);
    a (N, K, 1, 1) factor is that sigma."""
    if d != 1:
        raise ValueError(f"{func} takes one output dimension, got D = {d}")
    return sigma[..., 0] if sigma.ndim == 4 else sigma


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
    y[n, s] = mu[n, k] + sqrt(sigma_temperature) * sigma[n, k] * z,  z ~ N(0, I_D)
    (L[n, k] z for full covariances: covariance sigma_temperature * L L^T), where

        q[n, k] = p[n, k]^(1 / temperature) / sum_j p[n, j]^(1 / temperature)

    (the logits divided by the temperature, as in sketch-rnn and keras-mdn-layer).
    ``temperature`` < 1 sharpens the choice (towards 0 it always picks the heaviest
    component), > 1 flattens it; ``sigma_temperature`` multiplies each variance (0 returns
    the chosen components' means). With both at 1 the draws are those of the plain mixture.

    Args:
        p_val: (N, K) weights (rows sum to 1).
        mu_val, sigma_val: (N, K) means and sigmas >= 0, or (N, K, D); or means (N, K, D)
            and Cholesky factors (N, K, D, D). A sigma of 0 (a float32 ``exp`` that
            underflowed, far outside the training data) draws the component's mean.
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
    scale = sigma[rows, comp]  # (N, S, D), or (N, S, D, D) factors
    if sigma_temperature != 1.0:
        scale = np.sqrt(sigma_temperature) * scale
    step = np.einsum("nsde,nse->nsd", scale, z) if scale.ndim == 4 else scale * z
    y = mu[rows, comp] + step
    return y if np.ndim(mu_val) == 3 else y[:, :, 0]


def mixture_log_likelihood(p_val, mu_val, sigma_val, y):
    """log p(y_n) under row n's Gaussian mixture, in log space and without clamps.

        log p(y_n) = logsumexp_k [ log p_nk - sum_d (y_nd - mu_nkd)^2 / (2 sigma_nkd^2)
                                   - sum_d log sigma_nkd - D log(2 pi) / 2 ]

    and for Cholesky factors L: log p_nk - |L_nk^-1 (y_n - mu_nk)|^2 / 2 - sum_d log L_nkdd
    - D log(2 pi) / 2, the solve by forward substitution.

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
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        half, log_det = _half_distance_and_log_det(y[:, None, :] - mu, sigma)  # (N, K)
        log_terms = np.log(p) - half - log_det - 0.5 * d * np.log(2 * np.pi)
    return logsumexp(log_terms, axis=1)


def held_out_nll(p_val, mu_val, sigma_val, y):
    """Mean negative log-likelihood of y under per-row mixtures: -mean(mixture_log_likelihood).

    Args and shapes as ``mixture_log_likelihood``; returns a float.
    """
    return float(-np.mean(mixture_log_likelihood(p_val, mu_val, sigma_val, y)))


def mixture_density(p_val, mu_val, sigma_val, y_grid):
    """Density of each row's mixture on a grid of y: sum_k p_k prod_d N(y_d; mu_kd, sigma_kd),
    or sum_k p_k N(y; mu_k, L_k L_k^T) for Cholesky factors.

    Args:
        p_val, mu_val, sigma_val: mixture parameters, as ``sample_from_mixture``.
        y_grid: (M,) points for D = 1, (M, D) for D > 1.

    Returns:
        float64 array (N, M).
    """
    p, mu, sigma, d = _checks.mixture(p_val, mu_val, sigma_val)
    y = _checks.matrix("y_grid", y_grid, width=d)  # (M, D)
    if sigma.ndim == 4:
        half, log_det = _half_distance_and_log_det(
            y[None, :, None, :] - mu[:, None], sigma[:, None]
        )
        norm = np.exp(log_det) * (2 * np.pi) ** (d / 2)  # (N, M, K)
        return np.sum(p[:, None, :] * np.exp(-half) / norm, axis=2)
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
        p_val, mu_val, sigma_val: (N, K) mixture parameters (or (N, K, 1), or a
            (N, K, 1, 1) factor).
        y: (N,) or (N, 1) points.

    Returns:
        float64 array (N,) in [0, 1].
    """
    p, mu, sigma, d = _checks.mixture(p_val, mu_val, sigma_val)
    sigma = _one_dimensional(sigma, d, "mixture_cdf")
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

    With full covariances the same climb runs with precision matrices P_k = (L_k L_k^T)^-1:
    y <- (sum_k r_k P_k)^-1 sum_k r_k P_k mu_k, and ``tol`` is relative to the row's
    smallest principal standard deviation (its smallest sigma, for diagonal components).
    A start leaves the climb once it has converged, and Newton runs once per distinct top.

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
    factor = sigma if sigma.ndim == 4 else sigma[..., None] * np.eye(sigma.shape[2])
    return _mode_full(p, mu, factor, tol, max_iter, newton_steps)


class _Precisions:
    """A mixture's components in precision form, N rows of K components in D dimensions:
    ``inverse`` L^-1 and ``precision`` P = L^-T L^-1 (N, K, D, D), ``white_mu`` L^-1 mu and
    ``p_mu`` P mu (N, K, D), ``log_norm`` log p_k - log det L_k (N, K)."""

    def __init__(self, p, mu, factor):
        self.inverse = np.linalg.inv(factor)  # lower-triangular
        self.precision = np.swapaxes(self.inverse, -1, -2) @ self.inverse
        with np.errstate(divide="ignore"):
            log_det = np.sum(np.log(np.diagonal(factor, axis1=2, axis2=3)), axis=2)
            self.log_norm = np.log(p) - log_det
        self.white_mu = np.einsum("nkde,nke->nkd", self.inverse, mu)
        self.p_mu = np.einsum("nkde,nke->nkd", self.precision, mu)

    def log_terms(self, rows, y):
        """log p_k N(y | mu_k, Sigma_k) up to a constant, (A, K), for points y (A, D) in
        rows ``rows`` (A,)."""
        z = np.einsum("akde,ae->akd", self.inverse[rows], y) - self.white_mu[rows]
        return self.log_norm[rows] - 0.5 * np.sum(z * z, axis=2)


def _mode_full(p, mu, factor, tol, max_iter, newton_steps):
    """``mixture_mode`` on Cholesky factors (N, K, D, D) (diagonal sigmas as diagonal
    factors): mean-shift from every mean, then Newton on one start per distinct top of
    each row (starts that ended within 100 ``tol`` of a higher one are dropped); each
    row's answer is its first start at its highest density."""
    n, k, d = mu.shape
    parts = _Precisions(p, mu, factor)
    smallest = np.sqrt(np.linalg.eigvalsh(_covariances(factor)).min(axis=(1, 2)))  # (N,)
    step_tol = tol * smallest
    rows = np.repeat(np.arange(n), k)  # start i climbs in row rows[i], from mu[row, i % k]
    y = _mean_shift(parts, rows, mu.reshape(n * k, d).copy(), step_tol, max_iter)
    log_density = logsumexp(parts.log_terms(rows, y), axis=1)  # (N K,)
    keep = _distinct_tops(y.reshape(n, k, d), log_density.reshape(n, k), step_tol)
    starts, y, log_density = np.flatnonzero(keep), y[keep], log_density[keep]
    at = rows[starts]
    for _ in range(newton_steps):
        y, log_density = _newton_step(parts, at, y, log_density)
    best = np.full(n, -np.inf)
    np.maximum.at(best, at, log_density)
    winner = np.zeros(n, dtype=int)
    winner[at[::-1]] = np.arange(len(at))[::-1]  # a fallback: each row's first start
    hit = log_density == best[at]
    winner[at[hit][::-1]] = np.flatnonzero(hit)[::-1]  # the first start at the row's best
    return y[winner]


def _mean_shift(parts, rows, y, step_tol, max_iter):
    """Mean-shift from the starts y (A, D), each in row ``rows`` (A,):

        y <- (sum_k r_k P_k)^-1 sum_k r_k P_k mu_k,  r_k proportional to p_k N(y | mu_k, Sigma_k),

    a start leaving the loop once it moves by no more than its row's ``step_tol`` (so a
    slow climb does not hold the others). Returns the points (A, D)."""
    active = np.arange(len(y))
    for _ in range(max_iter):
        at = rows[active]
        lt = parts.log_terms(at, y[active])
        r = np.exp(lt - lt.max(axis=1, keepdims=True))  # (A, K)
        a = np.einsum("ak,akde->ade", r, parts.precision[at])
        b = np.einsum("ak,akd->ad", r, parts.p_mu[at])
        new = np.linalg.solve(a, b[..., None])[..., 0]
        moved = np.abs(new - y[active]).max(axis=1)
        y[active] = new
        active = active[moved > step_tol[at]]
        if not len(active):
            break
    return y


def _distinct_tops(ys, log_density, step_tol):
    """Which of the K starts of each row to keep (N K,): not within 100 ``step_tol`` of a
    start of higher density (or of equal density and a lower index); ys (N, K, D)."""
    k = ys.shape[1]
    close = np.abs(ys[:, :, None] - ys[:, None]).max(axis=3) <= 100 * step_tol[:, None, None]
    higher = (log_density[:, None, :] > log_density[:, :, None]) | (
        (log_density[:, None, :] == log_density[:, :, None])
        & (np.arange(k)[None, :] < np.arange(k)[:, None])
    )
    return ~np.any(close & higher, axis=2).reshape(-1)


def _newton_step(parts, at, y, log_density):
    """One Newton step on log density from the points y (A, D) in rows ``at``, kept only
    where it raises the density; returns the points and their log densities (A,)."""
    w = softmax(parts.log_terms(at, y), axis=1)  # (A, K)
    grad_k = parts.p_mu[at] - np.einsum("akde,ae->akd", parts.precision[at], y)
    g = np.einsum("ak,akd->ad", w, grad_k)  # sum_k w_k P_k (mu_k - y)
    hessian = (
        np.einsum("ak,akd,ake->ade", w, grad_k, grad_k)
        - np.einsum("ad,ae->ade", g, g)
        - np.einsum("ak,akde->ade", w, parts.precision[at])
    )
    candidate = y - np.einsum("ade,ae->ad", np.linalg.pinv(hessian), g)
    candidate_density = logsumexp(parts.log_terms(at, candidate), axis=1)
    better = candidate_density > log_density
    y = np.where(better[:, None], candidate, y)
    return y, np.where(better, candidate_density, log_density)


def mixture_moments(p_val, mu_val, sigma_val):
    """Mean and standard deviation of each row's mixture, per output dimension:

        E[y_d] = sum_k p_k mu_kd,  Var[y_d] = sum_k p_k (sigma_kd^2 + mu_kd^2) - E[y_d]^2,

    (with full covariances sigma_kd^2 is (L_k L_k^T)_dd): the square root of the diagonal
    of ``mixture_covariance``.

    Args:
        p_val, mu_val, sigma_val: mixture parameters, as ``sample_from_mixture``
            (sigma >= 0).

    Returns:
        (mean, std): float64 arrays (N, D).
    """
    p, mu, sigma, _ = _checks.mixture(p_val, mu_val, sigma_val, zero_sigma=True)
    w = p[:, :, None]
    mean = np.sum(w * mu, axis=1)
    variance = sigma**2 if sigma.ndim == 3 else np.sum(sigma**2, axis=3)  # diag of L L^T
    spread = np.sum(w * (variance + (mu - mean[:, None, :]) ** 2), axis=1)  # no cancellation
    return mean, np.sqrt(spread)


def mixture_covariance(p_val, mu_val, sigma_val):
    """The covariance matrix of each row's mixture:

        Cov[y] = sum_k p_k (Sigma_k + (mu_k - m)(mu_k - m)^T),  m = sum_k p_k mu_k,

    Sigma_k = diag(sigma_k^2), or L_k L_k^T for Cholesky factors.

    Args:
        p_val, mu_val, sigma_val: mixture parameters, as ``sample_from_mixture``.

    Returns:
        float64 array (N, D, D).
    """
    p, mu, sigma, _ = _checks.mixture(p_val, mu_val, sigma_val, zero_sigma=True)
    mean = np.einsum("nk,nkd->nd", p, mu)
    dev = mu - mean[:, None, :]
    within = np.einsum("nk,nkde->nde", p, _covariances(sigma))
    return within + np.einsum("nk,nkd,nke->nde", p, dev, dev)


def mixture_marginal(p_val, mu_val, sigma_val, dims):
    """The mixture of each row over the outputs ``dims`` only (the others integrated out):

        p(y_A) = sum_k p_k N(y_A; mu_kA, Sigma_kAA),

    the weights unchanged; in the layout given: sigmas (N, K, |A|) for a diagonal
    mixture, the Cholesky factors of Sigma_kAA (N, K, |A|, |A|) for factors.

    Args:
        p_val, mu_val, sigma_val: mixture parameters, as ``sample_from_mixture``.
        dims: the output dimensions to keep, in that order (an int or a sequence).

    Returns:
        (p (N, K), mu (N, K, |A|), sigma (N, K, |A|) or (N, K, |A|, |A|)); (N, K) means
        and sigmas for (N, K) input.
    """
    p, mu, sigma, d = _checks.mixture(p_val, mu_val, sigma_val)
    dims = list(_checks.dims("dims", dims, d))
    if sigma.ndim == 4:
        cov = _covariances(sigma)[:, :, dims][:, :, :, dims]
        return p, mu[:, :, dims], np.linalg.cholesky(cov)
    if np.ndim(mu_val) == 2:
        return p, mu[:, :, 0], sigma[:, :, 0]
    return p, mu[:, :, dims], sigma[:, :, dims]


def mixture_condition(p_val, mu_val, sigma_val, given_dims, given_values):
    """The mixture of each row over the other outputs, given y[given_dims] = given_values:

        p(y_A | y_B = b) = sum_k w_k N(y_A; mu_kA + S_kAB S_kBB^-1 (b - mu_kB),
                                            S_kAA - S_kAB S_kBB^-1 S_kBA),
        w_k proportional to p_k N(b; mu_kB, S_kBB)

    (S_k the component's covariance; the mean and covariance are the Gaussian's conditional,
    the Schur complement). With diagonal components the means and sigmas of A are those
    of the components, and only the weights change. With factors, the conditional's factor
    is the lower-right block of the Cholesky factor of S_k ordered (B, A), and its mean
    shift that factor's lower-left block times L_kBB^-1 (b - mu_kB): no inverse is formed.

    Args:
        p_val, mu_val, sigma_val: mixture parameters, as ``sample_from_mixture``.
        given_dims: the outputs given (an int or a sequence), at least one left over.
        given_values: (N, |B|) their values, one row per mixture; (N,) for one.

    Returns:
        (p (N, K), mu (N, K, |A|), sigma (N, K, |A|) or factors (N, K, |A|, |A|)), A the
        other outputs in increasing order.
    """
    p, mu, sigma, d = _checks.mixture(p_val, mu_val, sigma_val)
    given = list(_checks.dims("given_dims", given_dims, d))
    rest = [i for i in range(d) if i not in given]
    if not rest:
        raise ValueError(
            f"given_dims must leave at least one of the {d} output(s) to condition, got {given}"
        )
    b = _targets("given_values", given_values, p, len(given))
    if sigma.ndim == 3:
        half, log_det = _half_distance_and_log_det(
            b[:, None, :] - mu[:, :, given], sigma[..., given]
        )
        new_mu, new_sigma = mu[:, :, rest], sigma[:, :, rest]
    else:
        order = given + rest
        factor = np.linalg.cholesky(_covariances(sigma)[:, :, order][:, :, :, order])
        nb = len(given)
        z = _solve(factor[:, :, :nb, :nb], b[:, None, :] - mu[:, :, given])  # (N, K, |B|)
        half = 0.5 * np.sum(z * z, axis=2)
        log_det = np.sum(np.log(np.diagonal(factor[:, :, :nb, :nb], axis1=2, axis2=3)), axis=2)
        new_mu = mu[:, :, rest] + np.einsum("nkab,nkb->nka", factor[:, :, nb:, :nb], z)
        new_sigma = factor[:, :, nb:, nb:]
    with np.errstate(divide="ignore"):  # a weight of 0 stays 0
        log_w = np.log(p) - half - log_det
    return softmax(log_w, axis=1), new_mu, new_sigma


def mixture_quantile(p_val, mu_val, sigma_val, q, tol=1e-10):
    """The q-quantiles of each row's mixture, one output dimension: y with F(y) = q.

    F is increasing, so each quantile is found by bisection between the lowest and highest
    ``mu_k -/+ 40 sigma_k`` of the row, to ``tol`` times the row's smallest sigma (or to
    float64's resolution, if that is coarser).

    Args:
        p_val, mu_val, sigma_val: (N, K) mixture parameters (or (N, K, 1), or a
            (N, K, 1, 1) factor).
        q: probabilities in (0, 1), a scalar or a sequence of Q of them.

    Returns:
        float64 array (N, Q).
    """
    p, mu, sigma, d = _checks.mixture(p_val, mu_val, sigma_val)
    sigma = _one_dimensional(sigma, d, "mixture_quantile")
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
