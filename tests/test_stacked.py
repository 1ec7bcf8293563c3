"""The stacked program (``mdn_tf.stacked``): M members in one program train as M networks.

The references are independent of the program: ``build_mdn``'s own initialisers, its
``train_step`` (through ``graph_loop``, bit-identical to it, fed the same batches) and the
graph path of ``fit_mdn``, which trains each member in a TF1 graph of its own with the same
splits, batches, checks and early stopping. Every test here runs under both TF1 modes.
Each new shape compiles for a second or two, so ``make test`` runs the tests on one small
network and shape, and ``make test-slow`` the rest.
"""

import dataclasses
import json
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf

import mdn_tf
from mdn_tf import stacked
from mdn_tf.engine import Engine, graph_loop
from mdn_tf.model import member_mixtures

tf1 = tf.compat.v1
pytestmark = pytest.mark.tf

SMALL = dict(  # noqa: C408 -- build_mdn's keyword arguments
    mixture_size=3,
    hidden_units=(8, 8),
    learning_rate=0.01,
    epsilon=1e-5,
    stable_loss=True,
    weight_decay=1e-3,
    activation="tanh",
    input_dim=2,
    output_dim=2,
)


def _data(n, seed, input_dim=2, output_dim=2):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(n, input_dim)).astype(np.float32)
    y = np.sin(x[:, :1] * np.arange(1, output_dim + 1)) + 0.2 * rng.normal(size=(n, output_dim))
    return x, y.astype(np.float32)


ARTICLE = {
    **SMALL,
    **{"hidden_units": (64, 128), "activation": "relu", "input_dim": 1, "output_dim": 1},
    **{"mixture_size": 12, "stable_loss": False, "weight_decay": 0.0},
}


@pytest.mark.parametrize("settings", [ARTICLE, pytest.param(SMALL, marks=pytest.mark.slow)])
def test_initial_weights_are_build_mdns_under_each_seed(settings):
    seeds = [0, 1, 2015, 2**31 - 2, 2**40 + 5]
    stacked_weights = stacked.initial_weights(mdn_tf.Network(**settings), seeds)
    for m, seed in enumerate(seeds):
        graph = tf.Graph()
        with graph.as_default(), tf1.Session(graph=graph) as sess:
            tf1.set_random_seed(seed)
            mdn = mdn_tf.build_mdn(**settings)
            sess.run(tf1.global_variables_initializer())
            built = sess.run([w for layer in mdn.layers for w in layer])
        for got, want in zip(stacked_weights, built):
            np.testing.assert_array_equal(got[m], want)
    assert not np.array_equal(stacked_weights[0][0], stacked_weights[0][1])


def _graph_loop_run(settings, weights, stream, epochs):
    """One member on graph_loop (= train_step), fed ``stream``'s batches: losses, weights."""
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        mdn = mdn_tf.build_mdn(**settings)
        xs, ys, losses = graph_loop(mdn)
        sess.run(tf1.global_variables_initializer())
        variables = [w for layer in mdn.layers for w in layer]
        for variable, value in zip(variables, weights):
            variable.load(value, sess)
        x_steps, y_steps = stream.take(epochs)
        step_losses = sess.run(losses, {xs: x_steps, ys: y_steps})
        return step_losses.reshape(epochs, -1).mean(axis=1), sess.run(variables)


@pytest.mark.slow
def test_stacked_members_train_as_separate_networks():
    # three members, each its own data, noise stream and minibatch shuffle, with decay and
    # the stable loss, D = 2: the program's losses and weights are each member's own
    # train_step run on the same batches, to float rounding
    epochs, n = 6, 40
    seeds = [11, 12, 13]
    weights = stacked.initial_weights(mdn_tf.Network(**SMALL), seeds)
    recipe = mdn_tf.Recipe(
        engine="stacked", epochs=epochs, batch_size=16, input_noise=0.1, target_noise=0.2
    )
    members = []
    for m, seed in enumerate(seeds):
        x, y = _data(n, seed)
        members.append(stacked.Member([w[m] for w in weights], x, y, None, None, seed))
    stacked.train_members(mdn_tf.Network(**SMALL), members, recipe, group_size=3)
    for member, seed in zip(members, seeds):
        x, y = _data(n, seed)
        stream = stacked.BatchStream(x, y, 16, 0.1, 0.2, seed)
        start = [w[seeds.index(seed)] for w in weights]
        losses, trained = _graph_loop_run(SMALL, start, stream, epochs)
        np.testing.assert_allclose(member.losses, losses, rtol=2e-5)
        for got, want in zip(member.weights, trained):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        assert member.best_epoch == epochs and member.val == []
    # the members really differ: the test would pass trivially on one member's copies
    assert not np.allclose(members[0].losses, members[1].losses)


RECIPE = mdn_tf.Recipe(
    engine="stacked",
    mixture_size=3,
    hidden_units=(8, 8),
    activation="tanh",
    stable_loss=True,
    weight_decay=1e-3,
    learning_rate=0.02,
    epochs=300,
    validation_fraction=0.3,
    check_every=5,
    patience=4,
    ensemble=3,
    input_noise=0.1,
    target_noise=0.1,
    batch_size=32,
    calibrate_sigma=True,
    standardize=True,
)


def _check_best_weights(fitted, x, y, seed):
    """Each member stopped ``patience`` checks after its best, and its kept weights score
    that best check's NLL on its own validation rows."""
    stops = [len(v) for v in fitted.val_history]
    assert len(set(stops)) > 1, stops  # members stopped at different checks
    rng = np.random.default_rng(seed)
    x_s = (x - x.mean(0)) / x.std(0)
    y_s = (y - y.mean(0)) / y.std(0)
    shift = np.sum(np.log(y.std(0)))
    n_val = round(0.3 * len(x))
    for m, (val, best_epoch) in enumerate(zip(fitted.val_history, fitted.best_epochs)):
        rng.integers(2**31 - 1)  # the member's seed, drawn before its split
        va = rng.permutation(len(x))[:n_val]
        epochs, nlls = val[:, 0], val[:, 1]
        assert best_epoch == epochs[np.argmin(nlls)]
        recipe = fitted.recipe
        assert epochs[-1] == best_epoch + recipe.patience * recipe.check_every or (
            epochs[-1] == recipe.epochs
        )
        p, mu, sigma = member_mixtures([fitted.weights[m]], fitted.network, x_s[va])
        nll = mdn_tf.held_out_nll(p[0], mu[0], sigma[0], y_s[va]) + shift
        np.testing.assert_allclose(nll, nlls.min(), rtol=1e-5, atol=1e-5)
        assert len(fitted.loss_history) <= epochs[-1]  # the mean over the epochs all ran


@pytest.mark.slow
def test_same_seed_same_numbers():
    x, y = _data(120, 1)
    recipe = RECIPE
    a = mdn_tf.fit_mdn(x, y, recipe=recipe, seed=2)
    b = mdn_tf.fit_mdn(x, y, recipe=recipe, seed=2)
    np.testing.assert_array_equal(a.loss_history, b.loss_history)
    for wa, wb in zip(a.weights, b.weights):
        for u, v in zip(wa, wb):
            np.testing.assert_array_equal(u, v)
    assert a.sigma_scale == b.sigma_scale
    c = mdn_tf.fit_mdn(x, y, recipe=recipe, seed=3)
    assert not np.array_equal(a.loss_history[:5], c.loss_history[:5])


@pytest.mark.slow  # a shape of its own, so that its compilation is counted: make test-slow
def test_a_fit_compiles_one_program_and_members_do_not_depend_on_their_neighbours(monkeypatch):
    # three members, two side by side and then one alone, or one after another: the same
    # program for all, compiled once, and each member's numbers bit for bit the same
    x, y = _data(120, 2)
    recipe = dataclasses.replace(RECIPE, hidden_units=(5,), mixture_size=2, epochs=120)
    fits, programs = {}, {}
    for side_by_side in (2, 1):
        monkeypatch.setattr(stacked, "parallel_members", lambda n=side_by_side: n)
        before = stacked.compiled_programs()
        fits[side_by_side] = mdn_tf.fit_mdn(x, y, recipe=recipe, seed=8)
        programs[side_by_side] = stacked.compiled_programs() - before
    assert programs == {2: 1, 1: 0}
    a, b = fits[2], fits[1]
    np.testing.assert_array_equal(a.loss_history, b.loss_history)
    assert a.best_epochs == b.best_epochs and a.sigma_scale == b.sigma_scale
    for wa, wb in zip(a.weights, b.weights):
        for u, v in zip(wa, wb):
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("suite", ["make test", pytest.param("slow", marks=pytest.mark.slow)])
def test_early_stopping_keeps_each_members_best_weights(suite, tf1_mode, monkeypatch):
    # two members side by side, as on a machine with two threads; make test runs it under the
    # notebooks' TF1 mode, make test-slow under disable_v2_behavior
    if (suite == "make test") != (tf1_mode == "eager"):
        pytest.skip("make test runs it in eager mode, make test-slow under v2 behavior")
    monkeypatch.setattr(stacked, "parallel_members", lambda: 2)
    x, y = _data(120, 0)
    recipe = dataclasses.replace(RECIPE, hidden_units=(4,), mixture_size=2, epochs=150, ensemble=2)
    _check_best_weights(mdn_tf.fit_mdn(x, y, recipe=recipe, seed=6), x, y, seed=6)


@pytest.mark.slow
@pytest.mark.parametrize("output_dim", [1, 2])
def test_the_stacked_path_is_the_graph_path(output_dim):
    # the same fit on both engines: each member's splits, initial weights, minibatches,
    # noise, checks and early stopping are the same, so the two agree to float rounding for
    # as long as rounding has not moved a check (a few hundred steps here); and each member
    # keeps its own best weights
    x, y = _data(120, 0, output_dim=output_dim)
    recipe = dataclasses.replace(RECIPE, hidden_units=(8,), epochs=150)
    fits = {e: mdn_tf.fit_mdn(x, y, recipe=dataclasses.replace(recipe, engine=e), seed=9)
            for e in ("stacked", "graph")}  # fmt: skip
    a, b = fits["stacked"], fits["graph"]
    assert a.best_epochs == b.best_epochs
    np.testing.assert_allclose(a.loss_history, b.loss_history, rtol=1e-4)
    for va, vb in zip(a.val_history, b.val_history):
        np.testing.assert_allclose(va, vb, rtol=1e-4, atol=1e-4)
    for got, want in zip(a.predict(x[:20]), b.predict(x[:20])):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    assert abs(a.sigma_scale - b.sigma_scale) < 1e-3
    _check_best_weights(a, x, y, seed=9)


@pytest.mark.slow
def test_stacked_members_match_separate_engines():
    # without noise or minibatches the program's step is mdn_tf.engine.Engine's: three
    # members stacked against three Engine runs of their own
    epochs, seeds = 8, [1, 2, 3]
    settings = {**SMALL, "stable_loss": False}  # the article's clamped loss this time
    weights = stacked.initial_weights(mdn_tf.Network(**settings), seeds)
    members, data = [], []
    for m, seed in enumerate(seeds):
        x, y = _data(50, seed)
        data.append((x, y))
        members.append(stacked.Member([w[m] for w in weights], x, y, None, None, seed))
    recipe = mdn_tf.Recipe(engine="stacked", epochs=epochs, check_every=1, patience=1)
    stacked.train_members(mdn_tf.Network(**settings), members, recipe, group_size=3)
    for m, (member, (x, y)) in enumerate(zip(members, data)):
        graph = tf.Graph()
        with graph.as_default(), tf1.Session(graph=graph) as sess:
            mdn = mdn_tf.build_mdn(**settings)
            engine = Engine(mdn, epochs_per_run=epochs)
            sess.run(tf1.global_variables_initializer())
            variables = [w for layer in mdn.layers for w in layer]
            for variable, value in zip(variables, [w[m] for w in weights]):
                variable.load(value, sess)
            losses = engine.train(sess, x, y, epochs)
            trained = sess.run(variables)
        np.testing.assert_allclose(member.losses, losses, rtol=2e-5)
        for got, want in zip(member.weights, trained):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_same_seed_same_numbers_in_a_fresh_process(tmp_path):
    x, y = _data(120, 1)
    recipe = RECIPE
    here = mdn_tf.fit_mdn(x, y, recipe=recipe, seed=2)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    (tmp_path / "recipe.json").write_text(json.dumps(dataclasses.asdict(recipe)))
    code = (
        "import json, sys, numpy as np, mdn_tf, tensorflow as tf\n"
        "tf.compat.v1.disable_eager_execution()\n"
        "d = np.load(sys.argv[1]); r = json.load(open(sys.argv[2]))\n"
        "r['hidden_units'] = tuple(r['hidden_units'])\n"
        "f = mdn_tf.fit_mdn(d['x'], d['y'], recipe=mdn_tf.Recipe(**r), seed=2)\n"
        "np.save(sys.argv[3], f.loss_history)\n"
    )
    out = tmp_path / "losses.npy"
    args = [str(tmp_path / "data.npz"), str(tmp_path / "recipe.json"), str(out)]
    subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True)
    np.testing.assert_array_equal(np.load(out), here.loss_history)


@pytest.mark.slow
def test_diverging_members_side_by_side_are_named_and_the_fit_finishes(monkeypatch):
    # raw data far from scale 1 overflow the head: each member that diverges is named with
    # its epoch, goes on from its best check at a lower learning rate, and the fit ends in
    # finite weights; where every member diverges for good, the error says so instead
    monkeypatch.setattr(stacked, "parallel_members", lambda: 2)
    x = np.arange(200.0)
    recipe = mdn_tf.Recipe(engine="stacked", ensemble=3, epochs=40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fitted = mdn_tf.fit_mdn(x, 2 * x, recipe=recipe, seed=0)
        except mdn_tf.TrainingDiverged as error:
            assert re.search(r"member \d of 3: .*nan at epoch \d+ of 40", str(error))
            return
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert messages and all(re.search(r"member \d of 3: .*nan at epoch \d+", m) for m in messages)
    assert np.all(np.isfinite(fitted.loss_history))
    assert all(np.all(np.isfinite(a)) for a in fitted.predict(x[:, None]))
