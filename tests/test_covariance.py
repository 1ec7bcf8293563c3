"""Full-covariance mixtures: the head and its losses, the numpy functions in both layouts,
marginals and conditionals, fitting, saving, and the errors."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from scipy.special import logsumexp

import mdn_tf

tf1 = tf.compat.v1


def random_full_mixture(rng, n=6, k=3, d=3):
    """Weights (n, K), means (n, K, D) and Cholesky factors (n, K, D, D) of random
    covariances (well conditioned: A A^T / D + 0.2 I)."""
    p = rng.dirichlet(np.ones(k), size=n)
    mu = rng.normal(scale=1.5, size=(n, k, d))
    a = rng.normal(size=(n, k, d, d))
    cov = a @ np.swapaxes(a, -1, -2) / d + 0.2 * np.eye(d)
    return p, mu, np.linalg.cholesky(cov)


def scipy_log_likelihood(p, mu, factor, y):
    """log sum_k p_k N(y; mu_k, L_k L_k^T) with scipy's multivariate_normal."""
    n, k = p.shape
    terms = np.array(
        [
            [
                stats.multivariate_normal(mu[i, j], factor[i, j] @ factor[i, j].T).logpdf(y[i])
                for j in range(k)
            ]
            for i in range(n)
        ]
    )
    return logsumexp(np.log(p) + terms, axis=1)


# -- the numpy functions -----------------------------------------------------------------


def test_likelihood_density_and_nll_match_scipy(rng):
    p, mu, factor = random_full_mixture(rng)
    y = rng.normal(scale=1.5, size=(6, 3))
    expected = scipy_log_likelihood(p, mu, factor, y)
    np.testing.assert_allclose(
        mdn_tf.mixture_log_likelihood(p, mu, factor, y), expected, rtol=1e-12
    )
    assert mdn_tf.held_out_nll(p, mu, factor, y) == pytest.approx(-expected.mean(), rel=1e-12)
    grid = rng.normal(size=(5, 3))
    want = np.exp(
        [
            [
                scipy_log_likelihood(p[i : i + 1], mu[i : i + 1], factor[i : i + 1], g[None])[0]
                for g in grid
            ]
            for i in range(6)
        ]
    )
    np.testing.assert_allclose(mdn_tf.mixture_density(p, mu, factor, grid), want, rtol=1e-11)


def test_a_diagonal_factor_gives_the_diagonal_results(rng):
    n, k, d = 8, 3, 2
    p = rng.dirichlet(np.ones(k), size=n)
    mu = rng.normal(size=(n, k, d))
    sigma = np.exp(rng.normal(scale=0.3, size=(n, k, d)))
    factor = sigma[..., None] * np.eye(d)
    y = rng.normal(size=(n, d))
    for func in (mdn_tf.mixture_log_likelihood, mdn_tf.held_out_nll):
        np.testing.assert_allclose(func(p, mu, factor, y), func(p, mu, sigma, y), rtol=1e-13)
    grid = rng.normal(size=(4, d))
    np.testing.assert_allclose(
        mdn_tf.mixture_density(p, mu, factor, grid),
        mdn_tf.mixture_density(p, mu, sigma, grid),
        rtol=1e-12,
    )
    for a, b in zip(mdn_tf.mixture_moments(p, mu, factor), mdn_tf.mixture_moments(p, mu, sigma)):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    np.testing.assert_allclose(
        mdn_tf.mixture_mode(p, mu, factor), mdn_tf.mixture_mode(p, mu, sigma), atol=1e-7
    )
    draws = [
        mdn_tf.sample_from_mixture(p, mu, s, 5, rng=3, sigma_temperature=0.5)
        for s in (factor, sigma)
    ]
    np.testing.assert_allclose(*draws, rtol=1e-14)
    for dims in ([1], [1, 0]):
        full, diag = (
            mdn_tf.mixture_marginal(p, mu, factor, dims),
            mdn_tf.mixture_marginal(p, mu, sigma, dims),
        )
        np.testing.assert_allclose(full[1], diag[1])
        np.testing.assert_allclose(np.diagonal(full[2], axis1=2, axis2=3), diag[2], rtol=1e-13)
    given = rng.normal(size=(n, 1))
    full, diag = (
        mdn_tf.mixture_condition(p, mu, factor, [0], given),
        mdn_tf.mixture_condition(p, mu, sigma, [0], given),
    )
    np.testing.assert_allclose(full[0], diag[0], rtol=1e-12)
    np.testing.assert_allclose(full[1], diag[1], rtol=1e-12)
    np.testing.assert_allclose(full[2][..., 0], diag[2], rtol=1e-12)


def test_covariance_is_the_closed_form_and_what_samples_show(rng):
    p, mu, factor = random_full_mixture(rng, n=2, k=3, d=2)
    cov_k = factor @ np.swapaxes(factor, -1, -2)
    mean = np.einsum("nk,nkd->nd", p, mu)
    second = np.einsum("nk,nkde->nde", p, cov_k + np.einsum("nkd,nke->nkde", mu, mu))
    expected = second - np.einsum("nd,ne->nde", mean, mean)
    got = mdn_tf.mixture_covariance(p, mu, factor)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    std = mdn_tf.mixture_moments(p, mu, factor)[1]
    np.testing.assert_allclose(std, np.sqrt(np.diagonal(expected, axis1=1, axis2=2)), rtol=1e-12)
    # Monte Carlo, with sigma_temperature s multiplying each component's covariance
    for s in (1.0, 0.25):
        draws = mdn_tf.sample_from_mixture(p, mu, factor, 200_000, rng=7, sigma_temperature=s)
        want = np.einsum("nk,nkde->nde", p, s * cov_k + np.einsum("nkd,nke->nkde", mu, mu))
        want -= np.einsum("nd,ne->nde", mean, mean)
        for i in range(2):
            np.testing.assert_allclose(draws[i].mean(axis=0), mean[i], atol=0.02)
            np.testing.assert_allclose(np.cov(draws[i].T), want[i], atol=0.04)


def test_one_component_draws_follow_its_correlation():
    p, mu = np.ones((1, 1)), np.zeros((1, 1, 2))
    rho = -0.8
    factor = np.linalg.cholesky(np.array([[1.0, rho], [rho, 1.0]]))[None, None]
    draws = mdn_tf.sample_from_mixture(p, mu, factor, 100_000, rng=0)[0]
    assert np.corrcoef(draws.T)[0, 1] == pytest.approx(rho, abs=0.01)
    # a factor of zeros draws the mean (sampling accepts a zero diagonal)
    assert np.all(mdn_tf.sample_from_mixture(p, mu, 0 * factor, 3, rng=0) == 0)


def test_marginal_is_the_closed_form(rng):
    p, mu, factor = random_full_mixture(rng)
    cov = factor @ np.swapaxes(factor, -1, -2)
    dims = [2, 0]
    pm, mum, fm = mdn_tf.mixture_marginal(p, mu, factor, dims)
    assert fm.shape == (6, 3, 2, 2) and np.all(np.triu(fm, 1) == 0)
    np.testing.assert_array_equal(pm, p)
    np.testing.assert_allclose(
        fm @ np.swapaxes(fm, -1, -2), cov[:, :, dims][:, :, :, dims], rtol=1e-12
    )
    y = rng.normal(size=(6, 2))
    expected = scipy_log_likelihood(
        p, mu[:, :, dims], np.linalg.cholesky(cov[:, :, dims][:, :, :, dims]), y
    )
    np.testing.assert_allclose(mdn_tf.mixture_log_likelihood(pm, mum, fm, y), expected, rtol=1e-12)


def test_conditional_is_the_joint_over_the_marginal(rng):
    """log p(y_A | y_B) = log p(y_A, y_B) - log p(y_B), and each component's mean and
    covariance are the Schur-complement formulas."""
    p, mu, factor = random_full_mixture(rng)
    y = rng.normal(scale=1.5, size=(6, 3))
    given, rest = [2], [0, 1]
    pc, muc, fc = mdn_tf.mixture_condition(p, mu, factor, given, y[:, given])
    assert fc.shape == (6, 3, 2, 2) and np.all(np.triu(fc, 1) == 0)
    joint = mdn_tf.mixture_log_likelihood(p, mu, factor, y)
    marginal = mdn_tf.mixture_log_likelihood(
        *mdn_tf.mixture_marginal(p, mu, factor, given), y[:, given]
    )
    np.testing.assert_allclose(
        mdn_tf.mixture_log_likelihood(pc, muc, fc, y[:, rest]), joint - marginal, rtol=1e-10
    )
    cov = factor @ np.swapaxes(factor, -1, -2)
    s_ab = cov[:, :, rest][:, :, :, given]
    s_bb = cov[:, :, given][:, :, :, given]
    gain = s_ab @ np.linalg.inv(s_bb)
    want_mu = mu[:, :, rest] + np.einsum("nkab,nkb->nka", gain, y[:, None, given] - mu[:, :, given])
    want_cov = cov[:, :, rest][:, :, :, rest] - gain @ np.swapaxes(s_ab, -1, -2)
    np.testing.assert_allclose(muc, want_mu, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fc @ np.swapaxes(fc, -1, -2), want_cov, rtol=1e-10, atol=1e-12)
    # one output left: cdf and quantile read the (N, K, 1, 1) factor
    p1, mu1, f1 = mdn_tf.mixture_condition(p, mu, factor, [0, 2], y[:, [0, 2]])
    q = mdn_tf.mixture_quantile(p1, mu1, f1, [0.3])
    np.testing.assert_allclose(mdn_tf.mixture_cdf(p1, mu1, f1, q[:, 0]), 0.3, atol=1e-9)


def test_mode_of_a_correlated_mixture_is_a_stationary_top(rng):
    p, mu, factor = random_full_mixture(rng, n=5, k=3, d=2)
    mode = mdn_tf.mixture_mode(p, mu, factor)
    # the density at the mode beats it at every component mean and on a fine grid nearby
    best = mdn_tf.mixture_density(p, mu, factor, np.zeros((1, 2)))  # shape check only
    assert best.shape == (5, 1)
    for i in range(5):
        row = (p[i : i + 1], mu[i : i + 1], factor[i : i + 1])
        top = mdn_tf.mixture_density(*row, mode[i : i + 1])[0, 0]
        assert top >= mdn_tf.mixture_density(*row, mu[i]).max() - 1e-12
        offsets = np.stack(np.meshgrid(*[np.linspace(-0.01, 0.01, 9)] * 2), -1).reshape(-1, 2)
        assert top >= mdn_tf.mixture_density(*row, mode[i] + offsets).max() - 1e-12
    single = mdn_tf.mixture_mode(np.ones((2, 1)), mu[:2, :1], factor[:2, :1])
    np.testing.assert_allclose(single, mu[:2, 0], atol=1e-9)


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda p, mu, f: (p, mu, np.swapaxes(f, -1, -2)), "lower-triangular"),
        (lambda p, mu, f: (p, mu, f * np.where(np.eye(3), -1.0, 1.0)), "diagonal of sigma_val"),
        (lambda p, mu, f: (p, mu[:, :, :2], f), "must agree"),
        (lambda p, mu, f: (p, mu[:, :, 0], f), "must agree"),
    ],
)
def test_bad_factors_are_refused(rng, change, words):
    p, mu, factor = random_full_mixture(rng)
    with pytest.raises(ValueError, match=words):
        mdn_tf.mixture_log_likelihood(*change(p, mu, factor), np.zeros((6, 3)))


@pytest.mark.parametrize(
    "call, error, words",
    [
        (
            lambda m: mdn_tf.mixture_marginal(*m, [3]),
            ValueError,
            r"dims must be output dimensions in \[0, 3\)",
        ),
        (lambda m: mdn_tf.mixture_marginal(*m, [1, 1]), ValueError, "dims must not repeat"),
        (lambda m: mdn_tf.mixture_marginal(*m, []), ValueError, "at least one"),
        (lambda m: mdn_tf.mixture_marginal(*m, "0"), TypeError, "dims must be a sequence"),
        (
            lambda m: mdn_tf.mixture_condition(*m, [0, 1, 2], np.zeros((6, 3))),
            ValueError,
            "leave at least one",
        ),
        (lambda m: mdn_tf.mixture_condition(*m, [0], np.zeros((6, 2))), ValueError, "given_values"),
        (lambda m: mdn_tf.mixture_condition(*m, [0], np.zeros((5, 1))), ValueError, "given_values"),
        (lambda m: mdn_tf.mixture_condition(*m, [-1], np.zeros((6, 1))), ValueError, "given_dims"),
    ],
)
def test_bad_dims_are_refused(rng, call, error, words):
    with pytest.raises(error, match=words):
        call(random_full_mixture(rng))


# -- the graph: head, losses, gradients --------------------------------------------------


@pytest.mark.tf
def test_full_losses_match_scipy_and_the_gradient_is_finite(sess, rng):
    tf1.set_random_seed(3)
    mdn = mdn_tf.build_mdn(
        mixture_size=3, hidden_units=(16,), input_dim=2, output_dim=3, covariance="full"
    )
    assert mdn.sigma_out.shape.as_list() == [None, 3, 3, 3]
    assert mdn.log_sigma.shape.as_list() == [None, 3, 3, 3]
    assert mdn.network.covariance == "full"
    out_kernel = mdn.layers[-1][0]
    assert out_kernel.shape.as_list() == [16, 3 + 9 + 18]  # K + KD + KD(D+1)/2
    sess.run(tf1.global_variables_initializer())
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 3))
    feed = {mdn.x: x, mdn.y: y}
    p, mu, factor, log_factor, nll, loss = sess.run(
        [mdn.p_out, mdn.mu_out, mdn.sigma_out, mdn.log_sigma, mdn.nll, mdn.loss], feed
    )
    assert np.all(np.triu(factor, 1) == 0) and np.all(np.diagonal(factor, axis1=2, axis2=3) > 0)
    np.testing.assert_allclose(
        np.log(np.diagonal(factor, axis1=2, axis2=3)),
        np.diagonal(log_factor, axis1=2, axis2=3),
        rtol=1e-5,
        atol=1e-6,
    )
    expected = -np.mean(scipy_log_likelihood(p, mu, factor.astype(float), y))
    assert nll == pytest.approx(expected, rel=1e-5)
    assert loss == pytest.approx(expected, rel=1e-5)  # no clamp is active here
    objective = mdn_tf.mixture_nll_stable(mdn.y, tf.math.log(mdn.p_out), mdn.mu_out, mdn.log_sigma)
    grads = tf1.gradients([mdn.loss, objective], tf1.trainable_variables())
    assert all(np.all(np.isfinite(g)) for g in sess.run(grads, feed))


@pytest.mark.tf
def test_the_clamped_full_loss_is_the_article_clamp(sess, rng):
    """Collapsed factor diagonals are clamped at eps, and a far point's likelihood at eps."""
    p, mu, factor = random_full_mixture(rng, n=4, k=2, d=2)
    factor[0, :, 1, 1] = 1e-9
    y = rng.normal(size=(4, 2))
    y[1] = 50.0
    got = sess.run(mdn_tf.mixture_nll(y, p, mu, factor, epsilon=1e-5))
    clamped = factor.copy()
    d = np.arange(2)
    clamped[:, :, d, d] = np.maximum(clamped[:, :, d, d], 1e-5)
    lik = np.exp(mdn_tf.mixture_log_likelihood(p, mu, clamped, y))  # checked against scipy above
    assert got == pytest.approx(np.mean(-np.log(np.maximum(lik, 1e-5))), rel=1e-5)


@pytest.mark.tf
def test_covariance_is_checked(graph):
    with pytest.raises(ValueError, match="covariance must be 'diagonal' or 'full'"):
        mdn_tf.build_mdn(covariance="ful")
    with pytest.raises(ValueError, match="covariance must be 'diagonal' or 'full'"):
        mdn_tf.Recipe(covariance="Full")
    with pytest.raises(TypeError, match="covariance"):
        mdn_tf.Recipe(covariance=None)


# -- fitting, the fitted model's questions, saving (make test-slow: they train) ----------


def correlated_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 1))
    rho = 0.9 * x[:, 0]
    z1 = rng.standard_normal(n)
    z2 = rho * z1 + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    return x, np.stack(
        [np.sin(3 * x[:, 0]) + 0.1 * z1, 3 + 10 * (np.cos(3 * x[:, 0]) + 0.1 * z2)], 1
    )


FAST_FULL = mdn_tf.Recipe(
    engine="stacked",
    covariance="full",
    mixture_size=3,
    hidden_units=(16,),
    stable_loss=True,
    epochs=400,
    ensemble=2,
    validation_fraction=0.2,
    check_every=20,
    patience=5,
    calibrate_sigma=True,
    standardize=True,
    input_noise=0.02,
    batch_size=200,
)


@pytest.fixture(scope="module")
def fitted_full():
    x, y = correlated_data(600, 0)
    return mdn_tf.fit_mdn(x, y, recipe=FAST_FULL, seed=0)


@pytest.mark.tf
@pytest.mark.slow
def test_a_full_fit_learns_the_correlation_in_the_data_units(fitted_full):
    x = np.array([[-0.8], [0.0], [0.8]])
    p, mu, factor = fitted_full.predict(x)
    assert p.shape == (3, 6) and mu.shape == (3, 6, 2) and factor.shape == (3, 6, 2, 2)
    cov = fitted_full.cov(x)
    corr = cov[:, 0, 1] / np.sqrt(cov[:, 0, 0] * cov[:, 1, 1])
    # the truth is -0.72, 0, 0.72 (a small network's 400 epochs come within about 0.1 at
    # the ends; at 0 the means' spread, fast-changing there, adds to the covariance)
    assert corr[0] < -0.5 and corr[2] > 0.5 and abs(corr[1]) < 0.3
    assert np.all((0.5 < np.sqrt(cov[:, 1, 1])) & (np.sqrt(cov[:, 1, 1]) < 2))  # y2's sd is 1
    np.testing.assert_allclose(fitted_full.mean(x)[:, 1], 3 + 10 * np.cos(3 * x[:, 0]), atol=0.7)
    # the data's units: L' = diag(y_scale) L times the sigma factor, mu' = mu y_scale + y_shift
    x_shift, x_scale, y_shift, y_scale = fitted_full._scaling
    _, mu_t, factor_t = mdn_tf.model.member_mixtures(
        fitted_full.weights, fitted_full.network, (x - x_shift) / x_scale
    )
    np.testing.assert_allclose(mu[:, :3], mu_t[0] * y_scale + y_shift, rtol=1e-12)
    want = y_scale[:, None] * factor_t[0] * fitted_full.sigma_scale
    np.testing.assert_allclose(factor[:, :3], want, rtol=1e-12)


@pytest.mark.tf
@pytest.mark.slow
def test_the_fitted_marginal_and_conditional_views(fitted_full):
    x = np.array([[-0.8], [0.3]])
    y0 = fitted_full.mean(x)[:, :1] + 0.1
    cond = fitted_full.condition([1])
    y1 = fitted_full.mean(x)[:, 1:]
    joint = fitted_full.log_prob(x, np.hstack([y0, y1]))
    marg = fitted_full.marginal([1]).log_prob(x, y1)
    np.testing.assert_allclose(cond.log_prob(x, y0, given=y1), joint - marg, rtol=1e-10)
    q = cond.quantile(x, [0.25, 0.75], given=y1)
    np.testing.assert_allclose(cond.cdf(x, q[:, 1], given=y1), 0.75, atol=1e-8)
    assert cond.sample(x, 4, given=y1, rng=0).shape == (2, 4, 1)
    np.testing.assert_allclose(fitted_full.marginal([0, 1]).cov(x), fitted_full.cov(x), rtol=1e-12)
    np.testing.assert_allclose(fitted_full.marginal(0).mean(x)[:, 0], fitted_full.mean(x)[:, 0])
    with pytest.raises(TypeError, match="given must hold"):
        cond.mean(x)
    with pytest.raises(TypeError, match="takes no given"):
        fitted_full.marginal([0]).mean(x, given=y1)
    with pytest.raises(TypeError, match="take no given"):
        fitted_full.std(x, given=y1)
    with pytest.raises(ValueError, match="given_dims must leave"):
        fitted_full.condition([0, 1])


@pytest.mark.tf
@pytest.mark.slow
def test_saved_full_ensemble_predicts_the_same_in_a_fresh_process(fitted_full, tmp_path):
    path = fitted_full.save(tmp_path / "full")
    x = np.linspace(-1, 1, 7)[:, None]
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys, numpy as np, mdn_tf; m = mdn_tf.load_mdn(sys.argv[1]); "
        "np.savez(sys.argv[2], *m.predict(np.load(sys.argv[3])))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(path), str(tmp_path / "out.npz"), str(tmp_path / "x.npy")],
        check=True,
        capture_output=True,
    )
    with np.load(tmp_path / "out.npz") as got:
        for i, want in enumerate(fitted_full.predict(x)):
            np.testing.assert_array_equal(got[f"arr_{i}"], want)
    assert mdn_tf.load_mdn(path).recipe.covariance == "full"
    assert json.loads((path / "model.json").read_text())["format_version"] == 2


@pytest.mark.tf
@pytest.mark.slow
def test_a_one_member_stacked_full_fit_equals_the_graph_loop():
    """The stacked program and the TF1 graph loop train the same full-covariance network."""
    x, y = correlated_data(200, 1)
    recipe = dataclasses.replace(
        FAST_FULL,
        ensemble=1,
        epochs=30,
        validation_fraction=0.0,
        calibrate_sigma=False,
        input_noise=0.0,
    )
    fits = [
        mdn_tf.fit_mdn(x, y, recipe=dataclasses.replace(recipe, engine=e), seed=4)
        for e in ("stacked", "graph")
    ]
    np.testing.assert_allclose(fits[0].loss_history, fits[1].loss_history, rtol=2e-4)
    for a, b in zip(fits[0].predict(x[:20]), fits[1].predict(x[:20])):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-4)
