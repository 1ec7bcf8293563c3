"""A simple non-parametric yardstick for p(y | x): the k-nearest-neighbour Gaussian.

For an input x, take the k training points whose inputs are nearest (Euclidean distance on
inputs standardized per column), and predict y as one Gaussian per output dimension with
their mean and variance, widened for a new draw:

    p(y | x) = prod_d N(y_d; m_d, s_d^2 (1 + 1/k)),  m_d, s_d^2 = mean and variance (ddof=1)
                                                      of the neighbours' y_d

with s_d^2 at least 1e-6 of y_d's overall variance (tied, rounded targets). k is chosen by
cross-validated NLL on the training data. One Gaussian cannot split into branches, which is
what a mixture density network adds.
"""

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from mdn_tf import _checks
from mdn_tf.mixture import held_out_nll, mixture_log_likelihood

K_GRID = (2, 3, 5, 8, 12, 20, 30, 50, 80, 120, 200)
VARIANCE_FLOOR = 1e-6


@dataclass
class KNNGaussian:
    """A fitted k-NN Gaussian: ``predict`` gives the mixture (one component) as the MDN's
    ``predict`` does, so ``mdn_tf.mixture``'s functions and ``nll`` apply alike."""

    k: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_shift: np.ndarray
    x_scale: np.ndarray
    floor: np.ndarray
    cv_nll: dict  # k -> cross-validated NLL, for the k tried

    def predict(self, x):
        """p (n, 1), mu and sigma (n, 1, D): the neighbours' Gaussian at inputs x (n, d)."""
        x = _checks.matrix("x", x, width=self.x_train.shape[1])
        return _neighbour_gaussian(
            (self.x_train - self.x_shift) / self.x_scale,
            self.y_train,
            (x - self.x_shift) / self.x_scale,
            self.k,
            self.floor,
        )

    def log_prob(self, x, y):
        """log p(y | x) per row: (n,)."""
        return mixture_log_likelihood(*self.predict(x), y)

    def nll(self, x, y):
        """Mean negative log-likelihood, a float."""
        return held_out_nll(*self.predict(x), y)


def _neighbour_gaussian(x_train, y_train, x, k, floor):
    """The k-NN Gaussian at x, with inputs already standardized."""
    _, idx = cKDTree(x_train).query(x, k=k)
    idx = np.asarray(idx).reshape(len(x), k)  # query gives (n,) for k = 1
    neighbours = y_train[idx]  # (n, k, D)
    mean = neighbours.mean(axis=1)
    var = np.maximum(neighbours.var(axis=1, ddof=1), floor) * (1 + 1 / k)
    return np.ones((len(x), 1)), mean[:, None, :], np.sqrt(var)[:, None, :]


def fit_knn_gaussian(x_data, y_data, k_grid=K_GRID, folds=5, seed=0):
    """Choose k by ``folds``-fold cross-validated NLL and return the fitted ``KNNGaussian``.

    Args:
        x_data, y_data: (n, d) inputs and (n, D) targets; (n,) is read as one column.
        k_grid: the k to try (those below 2 or above the smallest training fold are
            skipped).
        folds: cross-validation folds (>= 2).
        seed: int, for the folds' shuffle.
    """
    x_data = _checks.matrix("x_data", x_data)
    y_data = _checks.matrix("y_data", y_data)
    _checks.same_length(x_data=x_data, y_data=y_data)
    folds = _checks.positive_int("folds", folds)
    n = len(x_data)
    if folds < 2 or n < 2 * folds:
        raise ValueError(f"folds must be >= 2 with at least 2 points per fold, got {folds}, n={n}")
    x_shift, x_scale = x_data.mean(axis=0), x_data.std(axis=0)
    x_scale = np.where(x_scale > 0, x_scale, 1.0)
    xs = (x_data - x_shift) / x_scale
    floor = VARIANCE_FLOOR * np.maximum(y_data.var(axis=0), np.finfo(float).tiny)
    fold_of = np.random.default_rng(seed).permutation(n) % folds
    largest = min(int(np.sum(fold_of != f)) for f in range(folds))
    ks = sorted({int(k) for k in k_grid if 2 <= k <= largest})
    if not ks:
        raise ValueError(f"k_grid has no k in [2, {largest}], got {tuple(k_grid)}")
    cv = {}
    for k in ks:
        scores = []
        for f in range(folds):
            tr, te = fold_of != f, fold_of == f
            mix = _neighbour_gaussian(xs[tr], y_data[tr], xs[te], k, floor)
            scores.append(held_out_nll(*mix, y_data[te]) * te.sum())
        cv[k] = float(np.sum(scores) / n)
    best = min(cv, key=cv.get)
    return KNNGaussian(best, x_data, y_data, x_shift, x_scale, floor, cv)
