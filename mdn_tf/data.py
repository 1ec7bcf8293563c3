"""The article's toy data: a noisy sine-plus-line, and the same points with axes swapped."""

import numpy as np

from mdn_tf import _checks

X_RANGE = (-10.5, 10.5)


def sine_curve(x):
    """The noise-free curve of the article: f(x) = 7 sin(0.75 x) + 0.5 x (any shape)."""
    x = _checks.numeric_array("x", x)
    return 7.0 * np.sin(0.75 * x) + 0.5 * x


def make_sine_data(n_samples=1000, seed=None):
    """Draw the article's data set.

    x ~ U(-10.5, 10.5),  y = 7 sin(0.75 x) + 0.5 x + r,  r ~ N(0, 1).

    Args:
        n_samples: number of points (the article's NSAMPLE = 1000).
        seed: int or None, for ``np.random.default_rng``; same seed, same data.

    Returns:
        (x_data, y_data): float32 arrays of shape (n_samples, 1).
    """
    n_samples = _checks.positive_int("n_samples", n_samples)
    seed = _checks.optional_seed("seed", seed)
    rng = np.random.default_rng(seed)
    x_data = rng.uniform(*X_RANGE, size=(n_samples, 1))
    r_data = rng.normal(size=(n_samples, 1))
    y_data = sine_curve(x_data) + r_data
    return x_data.astype(np.float32), y_data.astype(np.float32)


def swap_axes(x_data, y_data):
    """Return ``(y_data, x_data)``: the article's ``x_data, y_data = y_data, x_data``.

    The swapped problem is multi-valued: one input x has up to five branches of y.
    Both arrays must have the same number of rows.
    """
    _checks.same_length(
        x_data=_checks.column("x_data", x_data, finite=False),
        y_data=_checks.column("y_data", y_data, finite=False),
    )
    return y_data, x_data
