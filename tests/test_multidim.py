"""Several inputs and outputs, temperature, the mixture's mode and Bishop's robot arm."""

import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from tf_reference import member_graph

import mdn_tf

tf1 = tf.compat.v1


def random_mixture(rng, n=40, k=3, d=2):
    p = rng.dirichlet(np.ones(k), size=n)
    mu = rng.normal(scale=2.0, size=(n, k, d))
    sigma = np.exp(rng.normal(scale=0.4, size=(n, k, d)))
    return p, mu, sigma


def scipy_log_likelihood(p, mu, sigma, y):
    """log sum_k p_k prod_d N(y_d; mu_kd, sigma_kd), with scipy's norm.logpdf."""
    log_normal = stats.norm.logpdf(y[:, None, :], mu, sigma).sum(axis=2)  # (N, K)
    with np.errstate(divide="ignore"):  # log 0 = -inf for a point far from every component
        return np.log(np.sum(p * np.exp(log_normal), axis=1))


def np_clamped_nll(p, mu, sigma, y, eps):
    """The article's clamped loss, D dimensions, in float64 numpy (the issue's formula)."""
    s = np.maximum(sigma, eps)
    normal = np.exp(-((y[:, None, :] - mu) ** 2) / (2 * s**2)) / (np.sqrt(2 * np.pi) * s)
    return np.mean(-np.log(np.maximum(np.sum(p * normal.prod(axis=2), axis=1), eps)))


# -- losses and NLLs in D dimensions -------------------------------------------------------


@pytest.mark.tf
def test_d_dimensional_losses_match_scipy_and_the_clamped_formula(sess, rng):
    p, mu, sigma = random_mixture(rng)
    y = rng.normal(scale=2.0, size=(40, 2))
    sigma[0, :, 0] = 1e-7  # collapsed sigmas: the clamp at eps is active on row 0
    y[1] = 40.0  # a far outlier: row 1's likelihood is under the clamp
    feeds = [tf1.placeholder(tf.float32, shape) for shape in [(None, 2), (None, 3), (None, 3, 2)]]
    y_, p_, mu_ = feeds
    s_ = tf1.placeholder(tf.float32, (None, 3, 2))
    clamped = mdn_tf.mixture_nll(y_, p_, mu_, s_, epsilon=1e-5)
    stable = mdn_tf.mixture_nll_stable(y_, tf.math.log(p_), mu_, tf.math.log(s_))
    feed = {y_: y, p_: p, mu_: mu, s_: sigma}
    got_clamped = sess.run(clamped, feed)
    np.testing.assert_allclose(got_clamped, np_clamped_nll(p, mu, sigma, y, 1e-5), rtol=1e-5)
    # where every row's likelihood is well above the clamp, both losses are the exact NLL
    rows = np.exp(scipy_log_likelihood(p, mu, sigma, y)) > 1e-3
    assert rows.sum() > 20
    feed = {y_: y[rows], p_: p[rows], mu_: mu[rows], s_: sigma[rows]}
    expected = -np.mean(scipy_log_likelihood(p[rows], mu[rows], sigma[rows], y[rows]))
    np.testing.assert_allclose(sess.run(stable, feed), expected, rtol=1e-5)
    np.testing.assert_allclose(sess.run(clamped, feed), expected, rtol=1e-5)  # no clamp active


def test_numpy_likelihood_density_and_nll_in_d_dimensions(rng):
    p, mu, sigma = random_mixture(rng)
    y = rng.normal(scale=2.0, size=(40, 2))
    expected = scipy_log_likelihood(p, mu, sigma, y)
    np.testing.assert_allclose(mdn_tf.mixture_log_likelihood(p, mu, sigma, y), expected)
    assert mdn_tf.held_out_nll(p, mu, sigma, y) == pytest.approx(-expected.mean())
    grid = rng.normal(size=(7, 2))
    density = mdn_tf.mixture_density(p[:3], mu[:3], sigma[:3], grid)
    assert density.shape == (3, 7)
    for row in range(3):
        np.testing.assert_allclose(
            density[row],
            np.exp(scipy_log_likelihood(p[[row] * 7], mu[[row] * 7], sigma[[row] * 7], grid)),
        )


def test_one_dimension_reads_the_same_in_both_layouts(rng):
    p, mu, sigma = random_mixture(rng, d=1)
    y = rng.normal(size=(40, 1))
    flat = mdn_tf.mixture_log_likelihood(p, mu[:, :, 0], sigma[:, :, 0], y)
    np.testing.assert_array_equal(flat, mdn_tf.mixture_log_likelihood(p, mu, sigma, y))


# -- the networks --------------------------------------------------------------------------


@pytest.mark.tf
def test_build_mdn_shapes_and_parameter_count(sess, rng):
    mdn = mdn_tf.build_mdn(mixture_size=4, hidden_units=(8,), input_dim=3, output_dim=2)
    shapes = {v.name: v.shape.as_list() for v in tf1.trainable_variables()}
    assert shapes == {
        "hidden1/kernel:0": [3, 8],
        "hidden1/bias:0": [8],
        "out/kernel:0": [8, 4 + 2 * 4 * 2],  # K + 2KD units: weights, means, sigmas
        "out/bias:0": [20],
    }
    assert mdn.x.shape.as_list() == [None, 3] and mdn.y.shape.as_list() == [None, 2]
    sess.run(tf1.global_variables_initializer())
    x = rng.normal(size=(5, 3))
    p, mu, sigma = sess.run([mdn.p_out, mdn.mu_out, mdn.sigma_out], {mdn.x: x})
    assert p.shape == (5, 4) and mu.shape == sigma.shape == (5, 4, 2)
    # the article's order: units 0-3 weights, 4-11 means (component-major), 12-19 log-sigmas
    kernel, bias, w_out, b_out = sess.run(tf1.trainable_variables())
    out = np.maximum(x @ kernel + bias, 0) @ w_out + b_out
    np.testing.assert_allclose(mu, out[:, 4:12].reshape(5, 4, 2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sigma, np.exp(out[:, 12:]).reshape(5, 4, 2), rtol=1e-5)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.tf
def test_build_mlp_takes_several_inputs_and_outputs(sess):
    mlp = mdn_tf.build_mlp(hidden_units=5, input_dim=3, output_dim=2)
    assert mlp.x.shape.as_list() == [None, 3] and mlp.y_out.shape.as_list() == [None, 2]


@pytest.mark.tf
def test_losses_check_d_against_y(graph):
    y2 = tf1.placeholder(tf.float32, (None, 2))
    p = tf1.placeholder(tf.float32, (None, 3))
    m3 = tf1.placeholder(tf.float32, (None, 3, 3))
    with pytest.raises(ValueError, match=r"y must have shape \(batch, D\) with D = 3"):
        mdn_tf.mixture_nll(y2, p, m3, m3)
    with pytest.raises(ValueError, match="same rank"):
        mdn_tf.mixture_nll_stable(y2, p, m3, p)
    with pytest.raises(ValueError, match="same D"):
        mdn_tf.mixture_nll(y2, p, tf1.placeholder(tf.float32, (None, 3, 2)), m3)


@pytest.mark.tf
@pytest.mark.filterwarnings("ignore::mdn_tf.DiscreteTargetWarning")  # y2 is +-10: two spikes
def test_fit_mdn_on_two_dimensional_data_lowers_the_loss_and_maps_back(rng):
    x = rng.normal(size=(300, 3))
    y = np.column_stack([x[:, 0] + 0.1 * rng.normal(size=300), 5 + 10 * np.sign(x[:, 1])])
    recipe = mdn_tf.Recipe(mixture_size=3, hidden_units=(16,), epochs=60, standardize=True)
    fitted = mdn_tf.fit_mdn(x, y, recipe=recipe, seed=0)
    assert fitted.loss_history[-1] < fitted.loss_history[0] - 0.5
    p, mu, sigma = fitted.predict(x[:4])
    assert p.shape == (4, 3) and mu.shape == sigma.shape == (4, 3, 2)
    sess, mdn = member_graph(fitted)
    x_std = ((x[:4] - x.mean(0)) / x.std(0)).astype(np.float32)
    raw_mu, raw_sigma = sess.run([mdn.mu_out, mdn.sigma_out], {mdn.x: x_std})
    sess.close()
    np.testing.assert_allclose(mu, raw_mu * y.std(0) + y.mean(0), rtol=1e-5)
    np.testing.assert_allclose(sigma, raw_sigma * y.std(0), rtol=1e-5)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 3\)"):
        fitted.predict(x[:, :2])


# -- sampling and temperature --------------------------------------------------------------


def old_sampler(p, mu, sigma, samples_per_x, rng):
    """sample_from_mixture before temperatures existed (1-D), kept as the reference."""
    n, k = p.shape
    cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    u = rng.uniform(size=(n, samples_per_x, 1))
    comp = np.minimum((u > cdf[:, None, :]).sum(axis=2), k - 1)
    rows = np.arange(n)[:, None]
    z = rng.standard_normal(size=(n, samples_per_x))
    return mu[rows, comp] + sigma[rows, comp] * z


def test_default_temperatures_give_the_draws_of_before(rng):
    p, mu, sigma = random_mixture(rng, d=1)
    mu, sigma = mu[:, :, 0], sigma[:, :, 0]
    expected = old_sampler(p, mu, sigma, 10, np.random.default_rng(3))
    np.testing.assert_array_equal(mdn_tf.sample_from_mixture(p, mu, sigma, 10, rng=3), expected)


def test_d_dimensional_samples_follow_each_dimension():
    p = np.array([[0.3, 0.7]])
    mu = np.array([[[-4.0, 10.0], [3.0, -2.0]]])
    sigma = np.array([[[1.0, 0.5], [0.8, 2.0]]])
    y = mdn_tf.sample_from_mixture(p, mu, sigma, 20_000, rng=0)[0]  # (S, D)
    assert y.shape == (20_000, 2)
    first = y[:, 1] > 4  # dimension 1 tells the components apart
    assert first.mean() == pytest.approx(0.3, abs=4 * math.sqrt(0.21 / 20_000))
    for comp, rows in ((0, first), (1, ~first)):
        for d in range(2):
            z = (y[rows, d] - mu[0, comp, d]) / sigma[0, comp, d]
            assert stats.kstest(z, "norm").pvalue > 1e-3


def test_temperature_reweights_components_exactly():
    p = np.array([[0.2, 0.3, 0.5]])
    mu, sigma = np.array([[-10.0, 0.0, 10.0]]), np.full((1, 3), 0.1)
    n = 40_000
    for tau in (0.5, 2.0):
        q = p[0] ** (1 / tau) / np.sum(p[0] ** (1 / tau))
        y = mdn_tf.sample_from_mixture(p, mu, sigma, n, rng=1, temperature=tau)[0]
        shares = [np.mean(np.abs(y - m) < 1) for m in mu[0]]
        np.testing.assert_allclose(shares, q, atol=4 * math.sqrt(0.25 / n))
    cold = mdn_tf.sample_from_mixture(p, mu, sigma, 1000, rng=1, temperature=1e-6)
    assert np.all(np.abs(cold - 10.0) < 1)  # the heaviest component, always


def test_sigma_temperature_scales_each_variance():
    p, mu, sigma = np.array([[1.0]]), np.array([[[1.0, -2.0]]]), np.array([[[0.5, 3.0]]])
    means = mdn_tf.sample_from_mixture(p, mu, sigma, 5, rng=0, sigma_temperature=0.0)
    np.testing.assert_array_equal(means, np.broadcast_to(mu, (1, 5, 2)))
    y = mdn_tf.sample_from_mixture(p, mu, sigma, 50_000, rng=0, sigma_temperature=4.0)[0]
    np.testing.assert_allclose(y.std(axis=0), 2 * sigma[0, 0], rtol=0.02)  # sqrt(4) = 2


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"temperature": 0.0}, ValueError, "temperature"),
        ({"temperature": -1.0}, ValueError, "temperature"),
        ({"sigma_temperature": -0.5}, ValueError, "sigma_temperature"),
        ({"temperature": "hot"}, TypeError, "temperature"),
    ],
)
def test_temperatures_are_checked(kwargs, error, words):
    with pytest.raises(error, match=words):
        mdn_tf.sample_from_mixture([[1.0]], [[0.0]], [[1.0]], **kwargs)


def test_mixture_arrays_must_agree_in_k_and_d():
    p = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match="must agree in N, K"):
        mdn_tf.held_out_nll(p, np.zeros((2, 3, 2)), np.ones((2, 3, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"y must have shape \(n, 2\)"):
        mdn_tf.held_out_nll(p, np.zeros((2, 3, 2)), np.ones((2, 3, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"y_grid must have shape \(n, 2\)"):
        mdn_tf.mixture_density(p, np.zeros((2, 3, 2)), np.ones((2, 3, 2)), np.zeros(4))


# -- the most probable answer --------------------------------------------------------------


def grid_mode(p, mu, sigma, stages):
    """The densest point of one mixture (p (1, K), mu and sigma (1, K, D), or (1, K) for
    D = 1) on a grid per stage (half width, points per axis), each centred on the previous
    stage's best point (the first on 0)."""
    best = np.zeros(1 if mu.ndim == 2 else mu.shape[-1])
    for half_width, steps in stages:
        axes = [centre + np.linspace(-half_width, half_width, steps) for centre in best]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(best))
        best = grid[mdn_tf.mixture_density(p, mu, sigma, grid)[0].argmax()]
    return best


def test_mode_of_one_dimension_against_a_grid_narrow_beats_wide():
    # a heavy wide component and a light narrow one: the narrow one has the higher peak,
    # 0.2 / 0.05 = 4 against 0.8 / 2 = 0.4 (over sqrt(2 pi))
    p = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    mu = np.array([[0.0, 3.0], [-0.7, 0.7], [-2.0, 2.5]])  # row 2 unimodal, row 3 bimodal
    sigma = np.array([[2.0, 0.05], [1.0, 1.0], [0.5, 1.5]])
    mode = mdn_tf.mixture_mode(p, mu, sigma)
    assert mode.shape == (3, 1)
    for row in range(3):  # steps of 0.01, then of 1e-5
        best = grid_mode(p[[row]], mu[[row]], sigma[[row]], ((6.0, 1201), (0.02, 4001)))
        assert mode[row, 0] == pytest.approx(best[0], abs=1e-4 * sigma[row].max())
    assert mode[0, 0] == pytest.approx(3.0, abs=0.01)  # not the heavy component's mean, 0


def test_mode_of_two_dimensions_against_a_grid(rng):
    p, mu, sigma = random_mixture(rng, n=5, k=3, d=2)
    sigma[0, 0] = [0.05, 0.1]  # a narrow component in row 0
    mode = mdn_tf.mixture_mode(p, mu, sigma)
    for row in range(5):  # steps of 0.05, 0.001, then 5e-5
        stages = ((8.0, 321), (0.1, 201), (0.002, 81))
        best = grid_mode(p[[row]], mu[[row]], sigma[[row]], stages)
        scale = sigma[row].min()
        np.testing.assert_allclose(mode[row], best, atol=max(1e-4 * scale, 1e-4))


# -- Bishop's robot arm --------------------------------------------------------------------


def test_arm_forward_hand_computed_poses():
    angles = np.array([[0.0, np.pi], [np.pi / 2, np.pi / 2], [0.0, np.pi / 2]])
    expected = [[1.0, 0.0], [0.2, 0.8], [0.8, -0.2]]  # L1 = 0.8, L2 = 0.2
    np.testing.assert_allclose(mdn_tf.arm_forward(angles), expected, atol=1e-12)
    np.testing.assert_allclose(mdn_tf.arm_forward(angles[0]), expected[0], atol=1e-12)
    with pytest.raises(ValueError, match="angles must have shape"):
        mdn_tf.arm_forward(np.zeros((4, 3)))


def test_arm_data_ranges_and_the_two_solutions():
    angles, positions = mdn_tf.make_arm_data(5000, seed=0)
    assert angles.shape == positions.shape == (5000, 2) and angles.dtype == np.float32
    assert 0.3 <= angles[:, 0].min() and angles[:, 0].max() <= 1.2
    assert np.pi / 2 <= angles[:, 1].min() and angles[:, 1].max() <= 3 * np.pi / 2
    np.testing.assert_allclose(positions, mdn_tf.arm_forward(angles), atol=1e-6)
    np.testing.assert_array_equal(angles, mdn_tf.make_arm_data(5000, seed=0)[0])
    # elbow up and elbow down: theta2 mirrored about pi, theta1 turned by the same amount,
    # reach the same point
    t1, t2 = 0.7, 2.5
    other = [t1 - 2 * np.arctan2(0.2 * np.sin(t2), 0.8 - 0.2 * np.cos(t2)), 2 * np.pi - t2]
    np.testing.assert_allclose(mdn_tf.arm_forward([t1, t2]), mdn_tf.arm_forward(other))


def test_arm_rms_error_is_bishops_score():
    targets = np.array([[1.0, 0.0], [0.2, 0.8]])
    straight, bent = [0.0, np.pi], [np.pi / 2, np.pi / 2]  # reach exactly the two targets
    assert mdn_tf.arm_rms_error([straight, bent], targets) == pytest.approx(0.0, abs=1e-12)
    # the first pose reaches (0.8, -0.2) instead of (1, 0): misses of sqrt(0.08) and 0
    missed = mdn_tf.arm_rms_error([[0.0, np.pi / 2], bent], targets)
    assert missed == pytest.approx(math.sqrt(0.08 / 2))
    with pytest.raises(ValueError, match="same number of rows"):
        mdn_tf.arm_rms_error([bent], targets)


@pytest.mark.tf
def test_ensembles_in_d_dimensions_with_progress(rng, capsys):
    x = rng.normal(size=(80, 2))
    y = np.column_stack([x[:, 0], np.sign(x[:, 1]) + 0.1 * rng.normal(size=80)])
    recipe = mdn_tf.Recipe(
        mixture_size=2,
        hidden_units=(8,),
        epochs=10,
        check_every=5,
        ensemble=2,
        validation_fraction=0.25,
        calibrate_sigma=True,
        standardize=True,
    )
    fitted = mdn_tf.fit_mdn(x, y, recipe=recipe, seed=3, progress=True)
    assert "fit_mdn" in capsys.readouterr().err  # tqdm's bar, on stderr in a terminal
    p, mu, sigma = fitted.predict(x[:3])
    assert p.shape == (3, 4) and mu.shape == sigma.shape == (3, 4, 2)  # 2 members x 2
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    assert 0.25 < fitted.sigma_scale < 4
    with pytest.raises(TypeError, match="progress"):
        mdn_tf.fit_mdn(x, y, recipe=recipe, progress="yes")


@pytest.mark.tf
def test_losses_accept_an_unknown_d(graph):
    y = tf1.placeholder(tf.float32, (None, 2))
    p = tf1.placeholder(tf.float32, (None, 3))
    m = tf1.placeholder(tf.float32, (None, 3, None))  # D known only when fed
    mdn_tf.mixture_nll(y, p, m, m)
    mdn_tf.mixture_nll_stable(y, p, m, m)


@pytest.mark.tf
@pytest.mark.slow
def test_minibatches_with_every_other_option_in_two_dimensions():
    """batch_size with noise, early stopping, an ensemble and D = 2 at once: reproducible,
    each option changing the result, and early stopping on the checks' grid."""
    angles, positions = mdn_tf.make_arm_data(300, seed=2)
    recipe = mdn_tf.Recipe(
        mixture_size=2,
        hidden_units=(8,),
        learning_rate=0.01,
        epochs=40,
        batch_size=64,
        input_noise=0.05,
        target_noise=0.05,
        ensemble=2,
        validation_fraction=0.2,
        check_every=2,
        patience=3,
        stable_loss=True,
        standardize=True,
    )

    def fit(r):
        fitted = mdn_tf.fit_mdn(positions, angles, recipe=r, seed=5)
        return fitted.loss_history, fitted.predict(positions[:10]), fitted.best_epochs

    losses, (p, mu, sigma), best = fit(recipe)
    assert p.shape == (10, 4) and mu.shape == sigma.shape == (10, 4, 2)
    assert all(e % 2 == 0 and 0 < e <= 40 for e in best)
    again = fit(recipe)
    np.testing.assert_array_equal(again[0], losses)
    np.testing.assert_array_equal(again[1][1], mu)
    for change in ({"input_noise": 0.0, "target_noise": 0.0}, {"batch_size": 32}):
        other = fit(dataclasses.replace(recipe, **change))
        assert not np.array_equal(other[0][:5], losses[:5]), change
