"""The shipped data sets, the k-NN Gaussian baseline and the problem suite, against known
answers: published summary values, a brute-force neighbour search, closed-form entropies."""

import math

import numpy as np
import pytest
from scipy import stats

import mdn_tf
from mdn_tf.baseline import _neighbour_gaussian, fit_knn_gaussian
from mdn_tf.problems import FOLDS, N_TEST, PROBLEMS


def test_old_faithful_is_the_classic_table():
    waiting, eruptions = mdn_tf.load_faithful()
    assert waiting.shape == eruptions.shape == (272, 1)
    # R: summary(faithful); the first row; the two well-known means
    assert (waiting[0, 0], eruptions[0, 0]) == (79.0, 3.6)
    assert waiting.min() == 43 and waiting.max() == 96
    assert eruptions.min() == 1.6 and eruptions.max() == 5.1
    assert math.isclose(eruptions.mean(), 3.487783, abs_tol=5e-7)
    assert math.isclose(waiting.mean(), 70.89706, abs_tol=5e-6)


def test_motorcycle_is_silvermans_table():
    times, accel = mdn_tf.load_mcycle()
    assert times.shape == accel.shape == (133, 1)
    assert (times.min(), times.max()) == (2.4, 57.6)
    assert (accel.min(), accel.max()) == (-134.0, 75.0)
    assert np.all(np.diff(times[:, 0]) >= 0)  # sorted by time, with ties
    assert len(np.unique(times)) == 94


def test_neighbour_gaussian_against_a_brute_force_search(rng):
    x_train, y_train = rng.normal(size=(40, 2)), rng.normal(size=(40, 3))
    x = rng.normal(size=(7, 2))
    k = 5
    p, mu, sigma = _neighbour_gaussian(x_train, y_train, x, k, floor=np.zeros(3))
    assert p.shape == (7, 1) and mu.shape == sigma.shape == (7, 1, 3)
    for i in range(7):
        nearest = np.argsort(np.sum((x_train - x[i]) ** 2, axis=1))[:k]
        neighbours = y_train[nearest]
        np.testing.assert_allclose(mu[i, 0], neighbours.mean(axis=0))
        want = np.sqrt(neighbours.var(axis=0, ddof=1) * (1 + 1 / k))
        np.testing.assert_allclose(sigma[i, 0], want)


def test_knn_gaussian_reaches_the_entropy_of_homoscedastic_noise():
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, size=(3000, 1))
    y = 0.5 * x + rng.standard_normal((3000, 1))
    model = fit_knn_gaussian(x, y, seed=0)
    assert model.k >= 50  # smooth data: many neighbours win the cross-validation
    assert model.k == min(model.cv_nll, key=model.cv_nll.get)
    x_new = rng.uniform(-1, 1, size=(20_000, 1))
    y_new = 0.5 * x_new + rng.standard_normal((20_000, 1))
    entropy = 0.5 * math.log(2 * math.pi * math.e)  # of N(0, 1): 1.4189
    assert abs(model.nll(x_new, y_new) - entropy) < 0.03
    np.testing.assert_allclose(
        model.log_prob(x_new[:5], y_new[:5]).mean(), -model.nll(x_new[:5], y_new[:5])
    )


def test_knn_gaussian_checks_its_arguments():
    with pytest.raises(ValueError, match="folds must be >= 2"):
        fit_knn_gaussian(np.zeros((6, 1)), np.zeros((6, 1)), folds=5)
    with pytest.raises(ValueError, match="k_grid has no k"):
        fit_knn_gaussian(np.arange(20.0), np.arange(20.0), k_grid=(100,))
    with pytest.raises(ValueError, match="x_data, y_data must have the same number of rows"):
        fit_knn_gaussian(np.zeros((20, 1)), np.zeros((21, 1)))


def test_true_nlls_of_the_simulated_problems_match_closed_forms():
    # heteroscedastic: E[log(0.1 + 0.5|x|)] + 0.5 log(2 pi e), x ~ U(-3, 3):
    # (1/3) int_0^3 log(0.1 + 0.5u) du = (2/3) [v log v - v] from 0.1 to 1.6
    antiderivative = lambda v: v * math.log(v) - v  # noqa: E731
    expected = (2 / 3) * (antiderivative(1.6) - antiderivative(0.1))
    expected += 0.5 * math.log(2 * math.pi * math.e)
    *_, truth = PROBLEMS["heteroscedastic"].splits(0)[0]
    assert abs(truth - expected) < 4 * 0.8 / math.sqrt(N_TEST)  # the per-point sd is < 0.8
    # two branches 10 sd apart or more: a 0.1-sd Gaussian's entropy plus log 2
    *_, truth = PROBLEMS["two branches"].splits(0)[0]
    expected = 0.5 * math.log(2 * math.pi * math.e * 0.01) + math.log(2)
    assert abs(truth - expected) < 4 * 0.71 / math.sqrt(N_TEST)
    # the inverse sine near its Bayes-optimal bound; scaled: the same points, minus log 1000
    *_, sine_truth = PROBLEMS["inverse sine"].splits(0, n_test=4000)[0]
    assert abs(sine_truth - mdn_tf.bayes_optimal_nll()) < 4 * 0.7 / math.sqrt(4000)
    *_, scaled_truth = PROBLEMS["scaled sine"].splits(0, n_test=4000)[0]
    assert math.isclose(scaled_truth, sine_truth + math.log(1e-3), rel_tol=1e-9)
    # correlated: log(2 pi) + log(0.2^2) + 1 + E[log(1 - rho^2)] / 2, rho = 0.9 x, x ~ U(-1, 1),
    # where int_0^1 log(1 - a^2 u^2) du = ((1 + a) log(1 + a) - (1 - a) log(1 - a) - 2a) / a
    a = 0.9
    mean_log = ((1 + a) * math.log(1 + a) - (1 - a) * math.log(1 - a) - 2 * a) / a
    expected = math.log(2 * math.pi) + math.log(0.04) + 1 + 0.5 * mean_log
    *_, truth = PROBLEMS["correlated"].splits(0)[0]
    assert abs(truth - expected) < 4 * 1.2 / math.sqrt(N_TEST)  # the per-point sd is < 1.2
    x, y, *_ = PROBLEMS["correlated"].splits(0, truth=False)[0]
    rows = np.abs(x[:, 0] - 0.7) < 0.1  # the sample correlation of the residuals near x = 0.7
    residual = y - mdn_tf.problems.correlated_moments(x)[0]
    assert np.corrcoef(residual[rows].T)[0, 1] == pytest.approx(0.63, abs=0.1)
    # precise: homoscedastic N(0, 0.01^2) noise, so the entropy of that Gaussian
    *_, truth = PROBLEMS["precise"].splits(0)[0]
    expected = 0.5 * math.log(2 * math.pi * math.e * 0.01**2)
    assert abs(truth - expected) < 4 * 0.71 / math.sqrt(N_TEST)


def test_precise_problems_have_the_inputs_they_say():
    x, y, *_ = PROBLEMS["precise"].splits(0, truth=False)[0]
    assert x.shape == (4000, 8) and np.all(x[:, 7] == 1.0)  # the eighth input is constant
    # y is sin 3 x1 + x2^2 / 2 and noise of sd 0.01: the other inputs do not enter
    residual = y[:, 0] - np.sin(3 * x[:, 0]) - x[:, 1] ** 2 / 2
    assert residual.std() == pytest.approx(0.01, rel=0.05)
    assert all(abs(np.corrcoef(x[:, j], residual)[0, 1]) < 0.05 for j in range(2, 7))
    x, y, x_te, y_te, truth = PROBLEMS["small precise"].splits(0)[0]
    assert x.shape == (300, 6)
    for j in range(1, 5):  # the inputs on 5 levels
        np.testing.assert_array_equal(np.unique(x[:, j]), [0, 0.25, 0.5, 0.75, 1])
    # its truth is the mean of the Gaussian log-densities: a Monte Carlo check of the
    # entropy with the known moments
    mean, sd = mdn_tf.problems._small_precise_moments(x_te)
    expected = np.mean(np.log(sd) + 0.5 * math.log(2 * math.pi * math.e))
    assert abs(truth - expected) < 4 * 0.71 / math.sqrt(N_TEST)


def test_problem_splits():
    for problem in PROBLEMS.values():
        splits = problem.splits(1, truth=False)
        x, y, x_te, y_te, _ = splits[0]
        assert x.dtype == y.dtype == np.float64 and len(x) == len(y)
        if problem.load is None:
            assert len(splits) == 1 and len(x) == problem.n and len(x_te) == N_TEST
        else:  # the folds test every point once
            assert len(splits) == FOLDS
            tested = np.concatenate([s[3] for s in splits])
            assert len(tested) == problem.n
            np.testing.assert_array_equal(
                np.sort(tested, axis=0), np.sort(problem.load()[1], axis=0)
            )
    x, y, *_ = PROBLEMS["noisy arm"].splits(0)[0]
    assert x.shape == y.shape == (1000, 2)
    # the position noise: residual from the forward map, an N(0, 0.02^2) per coordinate
    residual = (x - mdn_tf.arm_forward(y)).ravel() / 0.02
    assert stats.kstest(residual, "norm").pvalue > 0.01


def test_suite_rows_and_table():
    from mdn_tf.evaluate import evaluate_suite, suite_to_markdown

    rows = evaluate_suite(models=("knn",), seeds=(0, 1), problems=("two branches",))
    (row,) = rows
    assert row.problem == "two branches" and row.n == 100
    # the k-NN Gaussian cannot split into the two branches: far above the truth
    assert row.nll["knn"].mean > row.truth.mean + 1
    row.nll["article"], row.train_s["article"] = None, None  # as when training diverged
    table = suite_to_markdown(rows)
    assert "| two branches | multimodal, small n | 100 | -0.19" in table
    assert "**1.2" in table and "| diverged |" in table  # best in bold; the divergence named


def test_score_says_diverged_instead_of_failing():
    def diverging(x, y, seed):
        raise mdn_tf.TrainingDiverged("member 1 of 1: ...")

    result = mdn_tf.problems.score(PROBLEMS["old faithful"], diverging)
    assert result == mdn_tf.problems.Score(nll=None, truth=None, train_s=None)
