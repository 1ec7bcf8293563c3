"""Training that does not end in NaNs, and noise that adapts to the data (``mdn_tf.stacked``).

A member whose training loss stops being finite goes on from its best check with half
the learning rate; one that cannot train at all is left out with a warning, and the fit
keeps the others. The non-finite losses are injected into the program's answers, so the
tests do not depend on finding data that diverges on every machine. Noise stages are
checked on a problem whose best noise is known to be small: data without noise.
"""

import dataclasses
import warnings

import numpy as np
import pytest

import mdn_tf
from mdn_tf import stacked
from mdn_tf._tf import side_by_side
from mdn_tf.model import member_mixtures

pytestmark = pytest.mark.tf

RECIPE = mdn_tf.Recipe(
    engine="stacked",
    mixture_size=2,
    hidden_units=(8,),
    activation="tanh",
    stable_loss=True,
    learning_rate=0.02,
    epochs=60,
    validation_fraction=0.3,
    check_every=5,
    patience=4,
    ensemble=3,
    standardize=True,
)


def _data(n=90, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(n, 1))
    return x, np.sin(2 * x) + 0.1 * rng.standard_normal((n, 1))


def _inject(monkeypatch, member, calls, no_checks=False):
    """Make the program's answers for member ``member`` (0, 1, ...: the members train one
    after another here, each alone) non-finite from the second epoch on, in its calls
    numbered ``calls`` (1, 2, ...), as a diverging member's would be; with ``no_checks``
    its checks are lost too (no best weights to fall back on)."""
    real_run, real_init = stacked._Session.run, stacked._Group.__init__
    seen = {"member": -1, "calls": 0}

    def init(self, *args):
        real_init(self, *args)
        seen["member"], seen["calls"] = seen["member"] + 1, 0

    def run(self, *args):
        epochs, log, vals, mons, stopped, state = real_run(self, *args)
        seen["calls"] += 1
        if seen["member"] == member and seen["calls"] in calls:
            log = log.copy()
            log[1:] = np.nan
            for w in state.adam.params:
                w[...] = np.nan
            if no_checks:
                vals = vals.copy()
                vals[...] = np.nan
                state.best_val[...] = np.inf
        return epochs, log, vals, mons, stopped, state

    monkeypatch.setattr(stacked._Group, "__init__", init)
    monkeypatch.setattr(stacked._Session, "run", run)
    _one_at_a_time(monkeypatch)


def _one_at_a_time(monkeypatch):
    """Members train one after another, in calls of 10 epochs: with ``_data()``'s rows,
    every fit here in make test runs the same program, compiled once."""
    monkeypatch.setattr(stacked, "parallel_members", lambda: 1)
    monkeypatch.setattr(stacked, "STEPS_PER_CALL", 10)


def _fit(recipe, x, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = mdn_tf.fit_mdn(x, y, recipe=recipe, seed=4)
    return fitted, [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def _finite(fitted, x):
    assert all(np.all(np.isfinite(w)) for member in fitted.weights for w in member)
    assert np.all(np.isfinite(fitted.loss_history))
    assert all(np.all(np.isfinite(a)) for a in fitted.predict(x))


def test_a_member_whose_loss_turns_nan_goes_on_from_its_best_check(monkeypatch):
    x, y = _data()
    _inject(monkeypatch, member=1, calls={2})
    fitted, messages = _fit(RECIPE, x, y)
    assert len(fitted.weights) == 3  # nobody was left out
    _finite(fitted, x)
    (message,) = messages
    assert "member 2 of 3" in message and "nan at epoch" in message
    assert "half the learning rate" in message and "(learning rate 0.02)" in message


@pytest.mark.slow
def test_a_member_that_keeps_diverging_keeps_its_best_check(monkeypatch):
    x, y = _data()
    _inject(monkeypatch, member=0, calls=set(range(1, 100)))
    fitted, messages = _fit(RECIPE, x, y)
    assert len(fitted.weights) == 3
    _finite(fitted, x)
    (message,) = messages
    # three divergences: at the first learning rate, then at half and a quarter of it
    assert message.count("nan at epoch") == 3 and "learning rate 0.005)" in message
    assert "keeps the weights of its best check" in message


@pytest.mark.slow  # a program of its own to compile: make test-slow
def test_a_member_with_nothing_to_fall_back_on_is_left_out(monkeypatch):
    x, y = _data()
    _inject(monkeypatch, member=2, calls=set(range(1, 100)), no_checks=True)
    fitted, messages = _fit(RECIPE, x, y)
    assert len(fitted.weights) == 2 and len(fitted.best_epochs) == 2  # the other two
    _finite(fitted, x)
    (message,) = messages
    assert "member 3 of 3" in message and "left out of the ensemble" in message
    # every member diverging for good is an error that says why, not a model of NaNs
    _inject(monkeypatch, member=0, calls=set(range(1, 100)), no_checks=True)
    alone = dataclasses.replace(RECIPE, ensemble=1)
    with pytest.raises(mdn_tf.TrainingDiverged, match=r"member 1 of 1: .*nan at epoch \d+ of 60"):
        _fit(alone, x, y)


def test_restart_resets_adam_and_the_patience_count():
    weights = [[np.full((1, 2), i, np.float32), np.zeros(2, np.float32)] for i in range(3)]
    state = stacked.GroupState.new(weights, learning_rate=0.01)
    adam = state.adam
    for field in (*adam.m, *adam.v):
        field[...] = 5.0
    adam.beta1_power[:] = adam.beta2_power[:] = 0.5
    state.since[:] = 7
    state.restart(1, [np.full((1, 2), 9.0), np.ones(2)], learning_rate=0.004)
    np.testing.assert_array_equal(adam.params[0][:, 0, 0], [0, 9, 2])
    np.testing.assert_array_equal(adam.params[1][1], [1, 1])
    assert all(np.all(f[1] == 0) and np.all(f[[0, 2]] == 5) for f in (*adam.m, *adam.v))
    np.testing.assert_array_equal(adam.beta1_power, [0.5, 1, 0.5])
    np.testing.assert_array_equal(state.since, [7, 0, 7])
    np.testing.assert_allclose(state.learning_rate, [0.01, 0.004, 0.01])


def test_members_side_by_side_keep_their_order_and_a_failure_stops_the_rest():
    """fit_mdn's member threads: results in the members' order; a member that fails stops
    the members not yet started, tells the running ones, and its error is raised."""
    started = []

    def task(item, stopping):
        started.append(item)
        if item == 1:
            raise ValueError("member 1 failed")
        if item == 0:  # running while member 1 fails: it is told
            assert stopping.wait(timeout=30)
        return 10 * item

    with pytest.raises(ValueError, match="member 1 failed"):
        side_by_side(task, list(range(6)), threads=2)
    assert sorted(started) == [0, 1]
    for threads in (1, 2, 3):
        tens = side_by_side(lambda item, _: 10 * item, list(range(5)), threads)
        assert tens == [0, 10, 20, 30, 40]


def test_noise_stages_go_on_while_a_lower_noise_improves_the_checks(monkeypatch):
    # y = sin 2x without noise: each stage's noise (0.3, then 0.075, ...) is the only width
    # the density has, so lower noise improves the checks, stage after stage; with one
    # stage the same network stays at the widest
    _one_at_a_time(monkeypatch)
    x, y = _data(seed=1)
    y = np.sin(2 * x)
    base = dataclasses.replace(
        RECIPE, input_noise=0.3, target_noise=0.3, epochs=400, patience=6, ensemble=2
    )
    one = mdn_tf.fit_mdn(x, y, recipe=base, seed=3)
    staged = mdn_tf.fit_mdn(x, y, recipe=dataclasses.replace(base, stages=3), seed=3)
    assert one.stages == [1, 1]
    assert all(s >= 2 for s in staged.stages)
    assert staged.nll(x, y) < one.nll(x, y) - 0.3


@pytest.mark.slow  # a program of its own to compile: make test-slow
def test_calibrated_checks_score_the_best_sigma_factor():
    # each check is the member's validation NLL at the best of the 25 sigma factors: the
    # same NLL computed in numpy from the member's kept weights (one check, so its best)
    network = mdn_tf.Network(
        mixture_size=2, hidden_units=(8,), learning_rate=0.02, stable_loss=True,
        activation="tanh", input_dim=1, output_dim=1,
    )  # fmt: skip
    x, y = (a.astype(np.float32) for a in _data(60, 2))
    weights = stacked.initial_weights(network, [5])
    member = stacked.Member([w[0] for w in weights], x[:40], y[:40], x[40:], y[40:], seed=5)
    recipe = mdn_tf.Recipe(
        engine="stacked", epochs=5, check_every=5, patience=10, validation_fraction=0.2,
        calibrate_sigma=True, calibrated_checks=True,
    )  # fmt: skip
    stacked.train_members(network, [member], recipe)
    (check,) = member.val
    p, mu, sigma = member_mixtures([member.weights], network, x[40:])
    nlls = [
        mdn_tf.held_out_nll(p[0], mu[0], sigma[0] * np.exp(s), y[40:]) for s in stacked.CHECK_SCALES
    ]
    assert check == (5, pytest.approx(min(nlls), abs=1e-4))
    assert nlls[12] > min(nlls) + 1e-3  # the factor 1 is not the best: the factor mattered
