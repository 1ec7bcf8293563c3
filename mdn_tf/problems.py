"""Problems of several kinds, to choose and check a recipe for data it has never seen.

Each problem gives train/test splits for a seed: simulated problems a fresh training set
and 20 000 fresh test points, with the true conditional density where it is known; real
data sets 5-fold cross-validation (the same folds for every model). ``score`` trains a
model on each split and returns the held-out NLL (the mean over the test points of
-log p(y | x), pooled over the folds), in the data's units.

    name             kind                              n       in  out  truth
    inverse sine     multimodal (the article's)        1000    1   1    yes
    heteroscedastic  y = x + (0.1 + 0.5|x|) e          500     1   1    yes
    two branches     y = +-(0.5 + x^2) + 0.1 e         100     1   1    yes
    noisy arm        angles given a noisy position     1000    2   2    no
    scaled sine      inverse sine, x * 1e3 + 5e4,      1000    1   1    yes
                     y * 1e-3 (scales far from 1)
    inverse sine 10k the article's, more points        10 000  1   1    yes
    old faithful     eruption given waiting (real)     272     1   1    no
    motorcycle       acceleration given time (real)    133     1   1    no
    correlated       y in R^2, correlation 0.9 x       5000    1   2    yes
    precise          sin 3x1 + x2^2 / 2 + N(0, 0.01^2)  4000    8   1    yes
                     (5 irrelevant inputs, 1 constant)
    small precise    a steep curve, noise 1% of range  300     6   1    yes
                     (4 inputs of 5 levels, 2 weak)
"""

from dataclasses import dataclass

import numpy as np

from mdn_tf.baseline import fit_knn_gaussian
from mdn_tf.data import (
    X_RANGE,
    load_faithful,
    load_mcycle,
    make_arm_data,
    make_sine_data,
    sine_curve,
    swap_axes,
)
from mdn_tf.fit import TrainingDiverged, fit_mdn
from mdn_tf.recipes import RECIPES
from mdn_tf.truth import marginal_density

N_TEST = 20_000
FOLDS = 5
TEST_SEED_OFFSET = 10_000
ARM_POSITION_NOISE = 0.02  # the position is measured with this standard deviation
SCALED_SHIFT, SCALED_X, SCALED_Y = 5e4, 1e3, 1e-3


def _normal_logpdf(y, mean, sd):
    return -0.5 * ((y - mean) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)


def _sine(n, seed):
    x, y = swap_axes(*make_sine_data(n, seed=seed))
    return x.astype(np.float64), y.astype(np.float64)


def _sine_truth(x, y):
    """p(y | x) = N(x; f(y), 1) / (21 p(x)) at each pair (``inverse_density`` gives the
    grid of all pairs)."""
    x, y = x[:, 0], y[:, 0]
    log_joint = _normal_logpdf(x, sine_curve(y), 1.0) - np.log(X_RANGE[1] - X_RANGE[0])
    return -np.mean(log_joint - np.log(marginal_density(x)[:, 0]))


def _hetero(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, size=(n, 1))
    return x, x + (0.1 + 0.5 * np.abs(x)) * rng.standard_normal((n, 1))


def _hetero_truth(x, y):
    return -np.mean(_normal_logpdf(y, x, 0.1 + 0.5 * np.abs(x)))


def _branches(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 1))
    sign = rng.choice([-1.0, 1.0], size=(n, 1))
    return x, sign * (0.5 + x**2) + 0.1 * rng.standard_normal((n, 1))


def _branches_truth(x, y):
    m = 0.5 + x**2
    both = np.logaddexp(_normal_logpdf(y, m, 0.1), _normal_logpdf(y, -m, 0.1))
    return -np.mean(both - np.log(2))


def _arm(n, seed):
    angles, positions = make_arm_data(n, seed=seed)
    noise = np.random.default_rng((seed, 1)).standard_normal(positions.shape)
    return positions + ARM_POSITION_NOISE * noise, angles.astype(np.float64)


def _scaled(n, seed):
    x, y = _sine(n, seed)
    return x * SCALED_X + SCALED_SHIFT, y * SCALED_Y


def _scaled_truth(x, y):  # the density of y' = y * c is p(y) / c
    return _sine_truth((x - SCALED_SHIFT) / SCALED_X, y / SCALED_Y) + np.log(SCALED_Y)


CORRELATED_SD = 0.2  # each output's standard deviation given x


def correlated_moments(x):
    """The correlated problem's truth at x (n, 1): means (n, 2) = (sin 3x, cos 3x) and
    covariances (n, 2, 2) with standard deviations 0.2 and correlation rho(x) = 0.9 x."""
    x = np.asarray(x, dtype=float)[:, 0]
    mean = np.stack([np.sin(3 * x), np.cos(3 * x)], axis=1)
    rho = 0.9 * x
    cov = np.empty((len(x), 2, 2))
    cov[:, 0, 0] = cov[:, 1, 1] = CORRELATED_SD**2
    cov[:, 0, 1] = cov[:, 1, 0] = rho * CORRELATED_SD**2
    return mean, cov


def _correlated(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 1))
    mean, cov = correlated_moments(x)
    return x, mean + np.einsum("nde,ne->nd", np.linalg.cholesky(cov), rng.standard_normal((n, 2)))


def _correlated_truth(x, y):
    """-mean log N(y; m(x), S(x)), in closed form."""
    mean, cov = correlated_moments(x)
    dev = y - mean
    quad = np.einsum("nd,nde,ne->n", dev, np.linalg.inv(cov), dev)
    log_det = np.log(np.linalg.det(cov))
    return float(np.mean(0.5 * quad + 0.5 * log_det + np.log(2 * np.pi)))


PRECISE_SD = 0.01


def _precise(n, seed):
    """Near-deterministic: y = sin(3 x1) + x2^2 / 2 + N(0, 0.01^2), x1 ... x7 ~ U(-1, 1)
    (x3 ... x7 irrelevant) and x8 = 1 (constant)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 8))
    x[:, 7] = 1.0
    return x, _precise_mean(x) + PRECISE_SD * rng.standard_normal((n, 1))


def _precise_mean(x):
    return np.sin(3 * x[:, :1]) + x[:, 1:2] ** 2 / 2


def _precise_truth(x, y):
    return -np.mean(_normal_logpdf(y, _precise_mean(x), PRECISE_SD))


def _small_precise_moments(x):
    """(mean, sd) of y given x: a steep curve in x1 (as a hull's resistance in its speed),
    gently moved by x2 and x3, with noise of 0.1 + 2% of the mean."""
    mean = 0.5 + 50 * x[:, :1] ** 6 * (1 + 0.2 * (x[:, 1:2] - 0.5)) + 0.5 * x[:, 2:3]
    return mean, 0.1 + 0.02 * mean


def _small_precise(n, seed):
    """Small and precise: x1 ~ U(0, 1), x2 ... x5 on 5 levels in [0, 1] (x4, x5
    irrelevant), x6 ~ U(0, 1) irrelevant; y ~ N(mean(x), sd(x)^2)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(n, 6))
    x[:, 1:5] = rng.integers(0, 5, size=(n, 4)) / 4
    mean, sd = _small_precise_moments(x)
    return x, mean + sd * rng.standard_normal((n, 1))


def _small_precise_truth(x, y):
    return -np.mean(_normal_logpdf(y, *_small_precise_moments(x)))


@dataclass(frozen=True)
class Problem:
    """A problem: simulated (``draw(n, seed)``, with ``truth(x, y)`` the true NLL or None)
    or real (``load()``, cross-validated)."""

    name: str
    kind: str
    n: int
    draw: object = None
    truth: object = None
    load: object = None

    def splits(self, seed, n_test=N_TEST, truth=True):
        """[(x_train, y_train, x_test, y_test, true NLL or None)], float64 arrays; a
        simulated problem tests on ``n_test`` fresh points (the truth's NLL on them is
        computed when ``truth`` is True and known)."""
        if self.load is None:
            x, y = self.draw(self.n, seed)
            x_te, y_te = self.draw(n_test, seed + TEST_SEED_OFFSET)
            known = truth and self.truth is not None
            truth = float(self.truth(x_te, y_te)) if known else None
            return [(x, y, x_te, y_te, truth)]
        x, y = self.load()
        fold_of = np.random.default_rng(seed).permutation(len(x)) % FOLDS
        return [
            (x[fold_of != f], y[fold_of != f], x[fold_of == f], y[fold_of == f], None)
            for f in range(FOLDS)
        ]


PROBLEMS = {
    p.name: p
    for p in (
        Problem("inverse sine", "multimodal", 1000, _sine, _sine_truth),
        Problem("heteroscedastic", "heteroscedastic", 500, _hetero, _hetero_truth),
        Problem("two branches", "multimodal, small n", 100, _branches, _branches_truth),
        Problem("noisy arm", "2 inputs, 2 outputs", 1000, _arm),
        Problem("scaled sine", "scales far from 1", 1000, _scaled, _scaled_truth),
        Problem("inverse sine 10k", "multimodal, large n", 10_000, _sine, _sine_truth),
        Problem("old faithful", "real (Härdle 1991)", 272, load=load_faithful),
        Problem("motorcycle", "real (Silverman 1985)", 133, load=load_mcycle),
        Problem("correlated", "2 outputs, correlated", 5000, _correlated, _correlated_truth),
        Problem("precise", "near-deterministic, 8 inputs", 4000, _precise, _precise_truth),
        Problem("small precise", "small n, low noise", 300, _small_precise, _small_precise_truth),
    )
}


MODELS = ("knn", "article", "tuned", "default")  # the columns of docs/evaluation.md's suite table


def model_fit(name):
    """``fit(x, y, seed)`` for a model name: "knn" (``fit_knn_gaussian``) or a recipe name
    of ``RECIPES``."""
    if name == "knn":
        return lambda x, y, seed: fit_knn_gaussian(x, y, seed=seed)
    if name not in RECIPES:
        raise ValueError(f"model must be 'knn' or one of {sorted(RECIPES)}, got {name!r}")
    return lambda x, y, seed: fit_mdn(x, y, recipe=name, seed=seed)


def pooled_truth(splits):
    """The truth's NLL over all the splits' test points, or None where it is unknown."""
    if any(truth is None for *_, truth in splits):
        return None
    count = sum(len(x_te) for _, _, x_te, _, _ in splits)
    return sum(truth * len(x_te) for _, _, x_te, _, truth in splits) / count


@dataclass(frozen=True)
class Score:
    """A model's held-out score on a problem's splits for one seed: its NLL pooled over
    the folds, the truth's (None when unknown), the model's mean ``train_s`` per split,
    and each test point's log-density (n_test,) when asked for; all None when training
    diverged."""

    nll: float | None
    truth: float | None
    train_s: float | None
    log_probs: np.ndarray | None = None


def score(problem, fit, seed=0, splits=None, log_probs=False):
    """Held-out NLL of ``fit(x_train, y_train, seed)`` (a model with ``nll(x, y)``) on the
    problem's splits for ``seed`` (or the ``splits`` given, to draw them once for several
    models), pooled over the folds; and the truth's, or None. Returns a ``Score``.

    With ``log_probs`` the model's ``log_prob(x, y)`` is read instead, and kept per test
    point (the folds' points in order), to compare two models on the same points.
    """
    splits = problem.splits(seed) if splits is None else splits
    total, count, seconds, points = 0.0, 0, 0.0, []
    for i, (x, y, x_te, y_te, _) in enumerate(splits):
        try:
            model = fit(x, y, seed * 100 + i)
        except TrainingDiverged:
            return Score(None, None, None)
        if log_probs:
            points.append(model.log_prob(x_te, y_te))
            total -= points[-1].sum()
        else:
            total += model.nll(x_te, y_te) * len(x_te)
        seconds += getattr(model, "train_s", 0.0)
        count += len(x_te)
    return Score(
        nll=total / count,
        truth=pooled_truth(splits),
        train_s=seconds / len(splits),
        log_probs=np.concatenate(points) if log_probs else None,
    )
