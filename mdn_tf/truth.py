"""What the data generator implies, computed numerically: the references a fit is judged by.

For the swapped data, y ~ U(-10.5, 10.5) and x = f(y) + N(0, 1) with f = ``sine_curve``, so

    p(x | y) = N(x; f(y), 1),   p(x) = (1/21) ∫ N(x; f(y), 1) dy,
    p(y | x) = N(x; f(y), 1) / (21 p(x))  on [-10.5, 10.5].
"""

import numpy as np

from mdn_tf import _checks
from mdn_tf.data import X_RANGE, sine_curve

_WIDTH = X_RANGE[1] - X_RANGE[0]  # 21
# Step 0.005: along y the integrands vary on the scale 1 / max|f'| = 1 / 5.75 = 0.17.
_Y_GRID = np.linspace(*X_RANGE, 4201)
# rows of x per block: a block of 64 x 4201 floats (2 MB) stays in the CPU's cache, which
# makes the integrals about 3 times faster than blocks of thousands of rows
_CHUNK = 64


def _normal_pdf(z):
    return np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


def inverse_density(x, y):
    """True conditional density p(y | x) of the swapped data.

    Args:
        x: inputs, shape (n,) (or anything that flattens to it).
        y: outputs to evaluate at, shape (m,).

    Returns:
        float64 array (n, m); zero outside [-10.5, 10.5].
    """
    x = _checks.finite_array("x", x).reshape(-1, 1)
    y = _checks.finite_array("y", y).reshape(1, -1)
    inside = (y >= X_RANGE[0]) & (y <= X_RANGE[1])
    return np.where(inside, _normal_pdf(x - sine_curve(y)) / _WIDTH / marginal_density(x), 0.0)


def _integrate_over_y(x, weight):
    """∫ weight(y) N(x; f(y), 1) dy over [-10.5, 10.5] for each x, shape (n,), in blocks."""
    x = _checks.finite_array("x", x).reshape(-1, 1)
    f_grid = sine_curve(_Y_GRID)[None, :]
    blocks = [
        np.trapezoid(weight * _normal_pdf(x[i : i + _CHUNK] - f_grid), _Y_GRID, axis=1)
        for i in range(0, len(x), _CHUNK)
    ]
    return np.concatenate(blocks)


def marginal_density(x):
    """p(x) of the swapped data, shape (n, 1): (1/21) ∫ N(x; f(y), 1) dy over [-10.5, 10.5]."""
    return (_integrate_over_y(x, 1.0) / _WIDTH)[:, None]


def inverse_mean(x):
    """E[y | x] for the swapped data, shape (n,): what an L2-trained net converges to.

    E[y | x] = ∫ y N(x; f(y), 1) dy / ∫ N(x; f(y), 1) dy.
    """
    return _integrate_over_y(x, _Y_GRID) / _integrate_over_y(x, 1.0)


def inverse_branches(x):
    """All y in [-10.5, 10.5] with f(y) = x, sorted: the branches of the inverse at scalar x."""
    x = _checks.finite_scalar("x", x)
    g = sine_curve(_Y_GRID) - x
    idx = np.nonzero(np.sign(g[:-1]) * np.sign(g[1:]) <= 0)[0]
    # linear interpolation inside each bracketing grid step; drop duplicates at exact zeros
    y0, y1, g0, g1 = _Y_GRID[idx], _Y_GRID[idx + 1], g[idx], g[idx + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        roots = np.where(g1 != g0, y0 - g0 * (y1 - y0) / (g1 - g0), y0)
    return np.unique(np.round(roots, 6))


def bayes_optimal_nll():
    """The lowest expected NLL any model of p(y | x) can reach on the swapped data, in nats.

    The expected negative log-likelihood of the true conditional density is the
    conditional entropy, and by the chain rule H(Y | X) = H(Y) + H(X | Y) - H(X), with

        H(Y) = log 21                 (y ~ U(-10.5, 10.5)),
        H(X | Y) = log(2 pi e) / 2    (x given y is N(f(y), 1)),
        H(X) = -∫ p(x) log p(x) dx    (numerically, on a grid covering p's support).

    Any model's expected NLL is H(Y | X) plus a KL divergence >= 0. Result: 1.288 nats.
    """
    x = np.linspace(-26.0, 26.0, 10401)  # f spans ±12.3; the noise adds < 14 sd each side
    p_x = marginal_density(x)[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        integrand = np.where(p_x > 0, -p_x * np.log(p_x), 0.0)
    h_x = np.trapezoid(integrand, x)
    return float(np.log(_WIDTH) + 0.5 * np.log(2 * np.pi * np.e) - h_x)
