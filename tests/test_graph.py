"""The dense layer, the MLP, the MDN head and the article's loss, against numpy references."""

import math

import numpy as np
import pytest
import tensorflow as tf

import mdn_tf

tf1 = tf.compat.v1
EPS = 1e-5
pytestmark = pytest.mark.tf


def np_mixture_nll(y, p, mu, sigma, eps=EPS):
    """The article's loss written independently in float64 numpy."""
    s = np.maximum(sigma, eps)
    dens = np.exp(-((y - mu) ** 2) / (2 * s**2)) / (np.sqrt(2 * np.pi) * s)
    return np.mean(-np.log(np.maximum(np.sum(p * dens, axis=1), eps)))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def run_nll(sess, y, p, mu, sigma, eps=EPS):
    k = p.shape[1]
    ys = tf1.placeholder(tf.float32, (None, 1))
    ps, mus, sigmas = (tf1.placeholder(tf.float32, (None, k)) for _ in range(3))
    loss = mdn_tf.mixture_nll(ys, ps, mus, sigmas, epsilon=eps)
    return sess.run(loss, {ys: y, ps: p, mus: mu, sigmas: sigma})


# -- dense --------------------------------------------------------------------------------


def test_dense_names_shapes_and_init(sess):
    x = tf1.placeholder(tf.float32, (None, 3))
    h = mdn_tf.dense(x, 200)
    mdn_tf.dense(h, 100)
    named = mdn_tf.dense(h, 5, name="head")
    shapes = {v.name: v.shape.as_list() for v in tf1.global_variables()}
    assert shapes == {
        "dense/kernel:0": [3, 200],
        "dense/bias:0": [200],
        "dense_1/kernel:0": [200, 100],
        "dense_1/bias:0": [100],
        "head/kernel:0": [200, 5],
        "head/bias:0": [5],
    }
    assert named.shape.as_list() == [None, 5]
    sess.run(tf1.global_variables_initializer())
    values = sess.run({v.name: v for v in tf1.global_variables()})
    kernel = values["dense_1/kernel:0"]
    limit = math.sqrt(6 / (200 + 100))  # Glorot uniform: U(-limit, limit)
    assert np.abs(kernel).max() <= limit
    assert kernel.std() == pytest.approx(limit / math.sqrt(3), rel=0.05)
    assert abs(kernel.mean()) < 0.01
    np.testing.assert_array_equal(values["dense_1/bias:0"], 0.0)


@pytest.mark.parametrize(
    ("activation", "reference"),
    [(None, lambda z: z), (tf.nn.tanh, np.tanh), ("relu", lambda z: np.maximum(z, 0))],
)
def test_dense_computes_affine_map(sess, rng, activation, reference):
    x = tf1.placeholder(tf.float32, (None, 4))
    out = mdn_tf.dense(x, 6, activation=activation, name="layer")
    kernel, bias = tf1.global_variables()
    assert (kernel.name, bias.name) == ("layer/kernel:0", "layer/bias:0")
    sess.run(tf1.global_variables_initializer())
    sess.run(bias.assign(rng.normal(size=6).astype(np.float32)))  # a non-zero bias to check
    x_val = rng.normal(size=(8, 4)).astype(np.float32)
    w, b, got = sess.run([kernel, bias, out], {x: x_val})
    np.testing.assert_allclose(got, reference(x_val @ w + b), rtol=1e-5, atol=1e-6)


# -- the article's loss -------------------------------------------------------------------


def test_mixture_nll_matches_numpy_reference(sess, rng):
    n, k = 64, 12
    y = rng.normal(scale=5, size=(n, 1))
    p = softmax(rng.normal(size=(n, k)))
    mu = rng.normal(scale=5, size=(n, k))
    sigma = np.exp(rng.normal(scale=0.7, size=(n, k)))
    got = run_nll(sess, y, p, mu, sigma)
    assert got == pytest.approx(np_mixture_nll(y, p, mu, sigma), rel=1e-5)


def test_one_component_is_the_gaussian_nll(sess):
    y = np.array([[0.0], [1.0], [-1.5], [3.0]])
    mu = np.array([[0.0], [0.0], [-1.0], [2.0]])
    sigma = np.array([[1.0], [2.0], [0.5], [3.0]])
    closed_form = np.mean(0.5 * np.log(2 * np.pi) + np.log(sigma) + (y - mu) ** 2 / (2 * sigma**2))
    assert run_nll(sess, y, np.ones_like(y), mu, sigma) == pytest.approx(closed_form, rel=1e-6)


def test_collapsed_sigma_is_clamped_to_epsilon(sess):
    # sigma far below epsilon behaves as sigma = epsilon: density 1/(sqrt(2 pi) eps) at the mean
    y, mu, p = np.zeros((1, 1)), np.zeros((1, 2)), np.array([[0.5, 0.5]])
    got = run_nll(sess, y, p, mu, np.full((1, 2), 1e-12))
    assert got == pytest.approx(-math.log(1 / (math.sqrt(2 * math.pi) * EPS)), rel=1e-6)
    assert got == pytest.approx(np_mixture_nll(y, p, mu, np.full((1, 2), 1e-12)), rel=1e-6)


def test_far_outlier_hits_the_clamp_exactly(sess):
    y = np.array([[100.0]])
    got = run_nll(sess, y, np.array([[0.3, 0.7]]), np.zeros((1, 2)), np.ones((1, 2)))
    assert got == pytest.approx(-math.log(EPS), rel=1e-6)  # 11.5129...


# -- the networks -------------------------------------------------------------------------


def test_build_mlp_loss_is_half_squared_error(sess, rng):
    mlp = mdn_tf.build_mlp()
    assert mlp.x.shape.as_list() == mlp.y.shape.as_list() == [None, 1]
    sess.run(tf1.global_variables_initializer())
    x_val, y_val = rng.normal(size=(10, 1)), rng.normal(size=(10, 1))
    y_out, loss = sess.run([mlp.y_out, mlp.loss], {mlp.x: x_val, mlp.y: y_val})
    assert loss == pytest.approx(0.5 * np.sum((y_out - y_val) ** 2), rel=1e-5)
    names = sorted(v.name for v in tf1.trainable_variables())
    assert names == ["hidden/bias:0", "hidden/kernel:0", "y_out/bias:0", "y_out/kernel:0"]


def test_build_mdn_head_matches_numpy_forward_pass(sess, rng):
    """softmax of the first K outputs, the middle K as means, exp of the last K."""
    k = 12
    mdn = mdn_tf.build_mdn(mixture_size=k)
    sess.run(tf1.global_variables_initializer())
    params = {v.name.split(":")[0]: sess.run(v) for v in tf1.trainable_variables()}
    assert params["hidden1/kernel"].shape == (1, 64)
    assert params["hidden2/kernel"].shape == (64, 128)
    assert params["out/kernel"].shape == (128, 3 * k)
    x_val = rng.uniform(-10, 10, size=(20, 1)).astype(np.float32)
    h = np.maximum(x_val @ params["hidden1/kernel"] + params["hidden1/bias"], 0)
    h = np.maximum(h @ params["hidden2/kernel"] + params["hidden2/bias"], 0)
    out = h @ params["out/kernel"] + params["out/bias"]
    p, mu, sigma = sess.run([mdn.p_out, mdn.mu_out, mdn.sigma_out], {mdn.x: x_val})
    np.testing.assert_allclose(p, softmax(out[:, :k]), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(mu, out[:, k : 2 * k], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sigma, np.exp(out[:, 2 * k :]), rtol=1e-4)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert np.all(p >= 0) and np.all(sigma > 0)
    y_val = rng.normal(size=(20, 1))
    loss = sess.run(mdn.loss, {mdn.x: x_val, mdn.y: y_val})
    assert loss == pytest.approx(np_mixture_nll(y_val, p, mu, sigma), rel=1e-4)


def _train(sess, model, x_data, y_data, steps):
    sess.run(tf1.global_variables_initializer())
    feed = {model.x: x_data, model.y: y_data}
    first = sess.run(model.loss, feed)
    for _ in range(steps):
        sess.run(model.train_step, feed)
    return first, sess.run(model.loss, feed)


def test_short_training_lowers_the_mlp_loss(sess):
    x_data, y_data = mdn_tf.make_sine_data(1000, seed=0)
    first, last = _train(sess, mdn_tf.build_mlp(), x_data, y_data, 200)
    assert last < 0.25 * first


def test_short_training_lowers_the_mdn_loss(sess):
    x_data, y_data = mdn_tf.swap_axes(*mdn_tf.make_sine_data(1000, seed=0))
    first, last = _train(sess, mdn_tf.build_mdn(), x_data, y_data, 300)
    assert first > 4.0 and last < 2.6
