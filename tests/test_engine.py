"""The training engines against the network's own train_step, the reference.

``graph_loop`` must equal as many ``train_step`` runs bit for bit; ``Engine`` (XLA) the
same steps up to float rounding, with each recipe option applied: the stable loss, weight
decay, noise on x and y (its draws reproduced here from the numpy stream it documents),
and D > 1. Every test here runs under both TF1 modes (``make test-slow`` runs the ``tf``
suite again under ``disable_v2_behavior``). Each engine compiles for about a second, so
``make test`` runs the graph loop's test, and ``make test-slow`` the engine's.
"""

import numpy as np
import pytest
import tensorflow as tf

import mdn_tf
from mdn_tf.engine import Engine, graph_loop

tf1 = tf.compat.v1
pytestmark = pytest.mark.tf
LR = 0.01


def _data(n=60, input_dim=1, output_dim=1, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, size=(n, input_dim)).astype(np.float32)
    y = np.sin(x).sum(axis=1, keepdims=True) + 0.3 * rng.standard_normal((n, output_dim))
    return x, y.astype(np.float32)


def _weights(sess, mdn):
    return [sess.run(w) for layer in mdn.layers for w in layer]


def _train(options, mode, epochs, x, y, engine_options=None, feed=None):
    """Build build_mdn(**options) with graph seed 0 and train it ``epochs`` epochs with
    train_step ("step"), graph_loop ("loop") or Engine ("engine"); returns (losses,
    weights). ``feed(epoch)`` gives the step's (x, y) for "step" when noise is on."""
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        tf1.set_random_seed(0)
        mdn = mdn_tf.build_mdn(input_dim=x.shape[1], output_dim=y.shape[1], **options)
        if mode == "engine":
            engine = Engine(mdn, epochs_per_run=4, **(engine_options or {}))
        if mode == "loop":
            xs, ys, loop_losses = graph_loop(mdn)
        sess.run(tf1.global_variables_initializer())
        if mode == "step":
            losses = []
            for epoch in range(epochs):
                x_e, y_e = feed(epoch) if feed else (x, y)
                losses.append(sess.run([mdn.train_step, mdn.loss], {mdn.x: x_e, mdn.y: y_e})[1])
        elif mode == "loop":
            shape = (epochs, *x.shape), (epochs, *y.shape)
            feed_loop = {xs: np.broadcast_to(x, shape[0]), ys: np.broadcast_to(y, shape[1])}
            losses = sess.run(loop_losses, feed_loop)
        else:
            losses = engine.train(sess, x, y, epochs)  # 4 + 4 + 2 epochs: three calls
        return np.asarray(losses), _weights(sess, mdn)


def _assert_same_steps(got, want, epochs, rtol=1e-4):
    """Losses equal up to float rounding; weights too, except where Adam turns a gradient
    that is zero up to rounding into a full step: at most 2 * lr per epoch, rarely."""
    (got_losses, got_weights), (want_losses, want_weights) = got, want
    np.testing.assert_allclose(got_losses, want_losses, rtol=rtol, atol=1e-5)
    diffs = np.concatenate([np.abs(a - b).ravel() for a, b in zip(got_weights, want_weights)])
    assert np.mean(diffs < 1e-4) > 0.99, np.sort(diffs)[-10:]
    assert diffs.max() <= 2 * LR * epochs, diffs.max()


OPTIONS = {
    "article": {},
    "stable loss": {"stable_loss": True},
    "weight decay": {"weight_decay": 0.01},
    "tanh, one layer": {"activation": "tanh", "hidden_units": (16,), "mixture_size": 3},
}


@pytest.mark.parametrize(
    "options",
    [pytest.param(o, marks=pytest.mark.slow) for o in OPTIONS.values()],
    ids=OPTIONS.keys(),
)
def test_engine_takes_the_steps_of_train_step(options):
    x, y = _data()
    reference = _train(options, "step", 10, x, y)
    _assert_same_steps(_train(options, "engine", 10, x, y), reference, 10)


@pytest.mark.slow
def test_engine_with_several_inputs_and_outputs():
    x, y = _data(input_dim=3)
    y = np.concatenate([y, -2 * y + x[:, :1]], axis=1)  # D = 2
    options = {"mixture_size": 4, "hidden_units": (16, 8)}
    _assert_same_steps(_train(options, "engine", 10, x, y), _train(options, "step", 10, x, y), 10)
    # full covariances, with the clamped loss and the stable one; the graph loop bit for bit
    for stable in (False, True):
        options = {"mixture_size": 3, "hidden_units": (16,), "covariance": "full"}
        options["stable_loss"] = stable
        step = _train(options, "step", 10, x, y)
        _assert_same_steps(_train(options, "engine", 10, x, y), step, 10)
        loop = _train(options, "loop", 10, x, y)
        np.testing.assert_array_equal(loop[0], step[0])


@pytest.mark.slow
def test_engine_options_change_the_training():
    # each option is applied: the stable loss, weight decay and noise each move the result;
    # three far outliers sit under the article's clamp, where only the stable loss learns
    x, y = _data()
    y[:3] += 100.0
    plain = _train({}, "engine", 6, x, y)[1]
    for options, engine_options in [
        ({"stable_loss": True}, {}),
        ({"weight_decay": 0.1}, {}),
        ({}, {"input_noise": 0.3}),
        ({}, {"target_noise": 0.3}),
    ]:
        other = _train(options, "engine", 6, x, y, engine_options)[1]
        assert max(np.abs(a - b).max() for a, b in zip(plain, other)) > 1e-3, options


@pytest.mark.slow
def test_engine_noise_is_the_numpy_stream_it_documents():
    # train_step fed x + 0.3 z and y + 0.2 z', with z then z' drawn epoch after epoch from
    # numpy.random.default_rng(seed), the stream fit_mdn gives a member of that seed: the
    # same steps
    x, y = _data()
    seed = 7
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(10):
        z_x = rng.standard_normal(x.shape)
        draws.append(((x + 0.3 * z_x).astype(np.float32), None))
        z_y = rng.standard_normal(y.shape)
        draws[-1] = (draws[-1][0], (y + 0.2 * z_y).astype(np.float32))

    options = {"input_noise": 0.3, "target_noise": 0.2, "seed": seed}
    got = _train({}, "engine", 10, x, y, options)
    _assert_same_steps(got, _train({}, "step", 10, x, y, feed=draws.__getitem__), 10)


@pytest.mark.slow
def test_engine_is_deterministic_and_its_seed_matters():
    x, y = _data()
    a = _train({}, "engine", 8, x, y, {"input_noise": 0.2, "seed": 1})
    b = _train({}, "engine", 8, x, y, {"input_noise": 0.2, "seed": 1})
    c = _train({}, "engine", 8, x, y, {"input_noise": 0.2, "seed": 2})
    np.testing.assert_array_equal(a[0], b[0])
    for wa, wb in zip(a[1], b[1]):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.slow
def test_engine_writes_the_mdn_variables_and_continues_its_state():
    # 6 epochs in one call of 6, or in calls of 4 and 2 (state carried in variables)
    x, y = _data()
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        tf1.set_random_seed(0)
        mdn = mdn_tf.build_mdn()
        whole, parts = Engine(mdn, epochs_per_run=6), Engine(mdn, epochs_per_run=4)
        sess.run(tf1.global_variables_initializer())
        start = _weights(sess, mdn)
        nll_before = sess.run(mdn.nll, {mdn.x: x, mdn.y: y})
        losses_whole = whole.train(sess, x, y, 6)
        weights_whole = _weights(sess, mdn)
        assert sess.run(mdn.nll, {mdn.x: x, mdn.y: y}) < nll_before  # mdn's graph sees it
        for w, value in zip([w for layer in mdn.layers for w in layer], start):
            w.load(value, sess)
        losses_parts = np.concatenate([parts.train(sess, x, y, 4), parts.train(sess, x, y, 2)])
        np.testing.assert_array_equal(losses_parts, losses_whole)
        for a, b in zip(_weights(sess, mdn), weights_whole):
            np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_engine_reset_starts_a_new_run_on_the_same_compiled_code():
    # one engine trains network after network: after a run with seed 1, loading the
    # start weights and reset(sess, 2) gives what a fresh engine with seed 2 gives
    x, y = _data()
    options = {"input_noise": 0.2, "target_noise": 0.1}
    fresh = _train({}, "engine", 10, x, y, {**options, "seed": 2})
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        tf1.set_random_seed(0)
        mdn = mdn_tf.build_mdn()
        engine = Engine(mdn, epochs_per_run=4, seed=1, **options)
        sess.run(tf1.global_variables_initializer())
        start = _weights(sess, mdn)
        first = engine.train(sess, x, y, 7)
        for w, value in zip([w for layer in mdn.layers for w in layer], start):
            w.load(value, sess)
        engine.reset(sess, 2)
        again = engine.train(sess, x, y, 10), _weights(sess, mdn)
    assert not np.array_equal(first, fresh[0][:7])  # seed 1's run was another run
    np.testing.assert_array_equal(again[0], fresh[0])
    for a, b in zip(again[1], fresh[1]):
        np.testing.assert_array_equal(a, b)


def test_graph_loop_is_bit_identical_to_train_step():
    x, y = _data()
    for options in ({}, {"stable_loss": True, "weight_decay": 1e-3}):
        loop_losses, loop_weights = _train(options, "loop", 8, x, y)
        step_losses, step_weights = _train(options, "step", 8, x, y)
        np.testing.assert_array_equal(loop_losses, step_losses)
        for a, b in zip(loop_weights, step_weights):
            np.testing.assert_array_equal(a, b)


def test_engine_rejects_bad_arguments(graph):
    mdn = mdn_tf.build_mdn(mixture_size=2, hidden_units=(4,))
    count = len(graph.get_operations())
    with pytest.raises(ValueError, match="epochs_per_run"):
        Engine(mdn, epochs_per_run=0)
    with pytest.raises(ValueError, match="input_noise"):
        Engine(mdn, input_noise=-1.0)
    assert len(graph.get_operations()) == count  # raised before adding anything
    engine = Engine(mdn)
    with pytest.raises(ValueError, match="x"):
        engine.train(None, np.zeros((5, 2)), np.zeros((5, 1)), 3)
    with pytest.raises(ValueError, match="epochs"):
        engine.train(None, np.zeros((5, 1)), np.zeros((5, 1)), 0)
    with pytest.raises(ValueError, match="seed"):
        engine.reset(None, -1)
    with pytest.raises(TypeError, match="seed"):
        engine.reset(None, None)
