"""The best possible score, the exact held-out NLL, the stable loss and fit_mdn."""

import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp
from tf_reference import member_graph

import mdn_tf
from mdn_tf.fit import Recipe, fit_mdn, oob_sigma_scale
from mdn_tf.problems import PROBLEMS

tf1 = tf.compat.v1


@pytest.mark.slow  # 2 s of numerical integration: make test-slow
def test_bayes_optimal_nll_matches_monte_carlo():
    """H(Y|X) = E[-log p(y|x)], with p(x) itself estimated by Monte Carlo over y."""
    rng = np.random.default_rng(0)
    n, m = 3000, 3000
    y = rng.uniform(-10.5, 10.5, n)
    x = mdn_tf.sine_curve(y) + rng.standard_normal(n)
    y_j = rng.uniform(-10.5, 10.5, m)
    log_kernel = -0.5 * (x[:, None] - mdn_tf.sine_curve(y_j)[None, :]) ** 2
    log_p_x = logsumexp(log_kernel, axis=1) - math.log(m) - 0.5 * math.log(2 * math.pi)
    log_p_x_given_y = -0.5 * (x - mdn_tf.sine_curve(y)) ** 2 - 0.5 * math.log(2 * math.pi)
    nll = -(log_p_x_given_y - math.log(21) - log_p_x)
    se = nll.std() / math.sqrt(n)
    assert mdn_tf.bayes_optimal_nll() == pytest.approx(nll.mean(), abs=4 * se + 0.005)
    assert mdn_tf.bayes_optimal_nll() == pytest.approx(1.288, abs=5e-4)


def test_held_out_nll_matches_the_direct_formula(rng):
    n, k = 200, 5
    p = rng.dirichlet(np.ones(k), size=n)
    mu, sigma = rng.normal(scale=3, size=(n, k)), np.exp(rng.normal(scale=0.5, size=(n, k)))
    y = rng.normal(scale=3, size=(n, 1))
    dens = p * np.exp(-((y - mu) ** 2) / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma)
    direct = -np.mean(np.log(dens.sum(axis=1)))
    assert mdn_tf.held_out_nll(p, mu, sigma, y) == pytest.approx(direct, rel=1e-12)
    assert mdn_tf.held_out_nll(p, mu, sigma, y[:, 0]) == pytest.approx(direct, rel=1e-12)


@pytest.mark.parametrize(("y", "sigma"), [(1e4, 1.0), (1e4, 1e-3), (0.0, 1e-30), (3.0, 1e30)])
def test_held_out_nll_is_exact_where_the_direct_formula_fails(y, sigma):
    # one component with weight 1: -log N(y; 0, sigma) in closed form, however extreme
    closed = 0.5 * (y / sigma) ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi)
    got = mdn_tf.held_out_nll([[1.0, 0.0]], [[0.0, 5.0]], [[sigma, 1.0]], [[y]])
    assert math.isfinite(got)
    assert got == pytest.approx(closed, rel=1e-12)


def _losses(k=12):
    y = tf1.placeholder(tf.float32, (None, 1))
    logits, mu, log_sigma = (tf1.placeholder(tf.float32, (None, k)) for _ in range(3))
    article = mdn_tf.mixture_nll(y, tf.nn.softmax(logits), mu, tf.exp(log_sigma))
    stable = mdn_tf.mixture_nll_stable(y, logits, mu, log_sigma)
    return (y, logits, mu, log_sigma), article, stable


@pytest.mark.tf
def test_stable_loss_equals_the_article_loss_without_clamps(sess, rng):
    feeds, article, stable = _losses()
    values = [
        rng.normal(scale=2, size=(100, 1)),
        rng.normal(size=(100, 12)),
        rng.normal(scale=2, size=(100, 12)),
        rng.normal(scale=0.3, size=(100, 12)),
    ]
    a, s = sess.run([article, stable], dict(zip(feeds, values)))
    assert 0 < a < 10  # every point's likelihood is far above epsilon here
    assert s == pytest.approx(a, rel=1e-5)


@pytest.mark.tf
def test_stable_gradients_stay_finite_far_from_every_mean(sess):
    feeds, article, stable = _losses(k=3)
    values = [[[1e4]], [[0.0, 1.0, -1.0]], [[0.0, 1.0, -1.0]], [[0.0, -3.0, 2.0]]]
    grads_stable = tf.gradients(stable, list(feeds[1:]))
    grads_article = tf.gradients(article, list(feeds[1:]))
    feed = {f: np.asarray(v, dtype=np.float32) for f, v in zip(feeds, values)}
    loss_s, g_s = sess.run([stable, grads_stable], feed)
    loss_a, g_a = sess.run([article, grads_article], feed)
    assert np.isfinite(loss_s) and loss_s > 1e5  # ~ (1e4 / e^2)^2 / 2 from the widest component
    assert all(np.all(np.isfinite(g)) for g in g_s)
    assert np.abs(g_s[1]).max() > 0  # the means are pulled towards y
    # the article's loss sits on its clamp there: -log(eps), and no gradient at all
    assert loss_a == pytest.approx(-math.log(1e-5), rel=1e-6)
    assert all(np.all(g == 0) for g in g_a)


TINY = Recipe(
    epochs=40,
    validation_fraction=0.2,
    check_every=5,
    patience=3,
    ensemble=2,
    stable_loss=True,
    input_noise=0.1,
    target_noise=0.1,
    calibrate_sigma=True,
)


@pytest.mark.tf
def test_fit_mdn_is_reproducible_and_predicts_mixtures():
    x_data, y_data = mdn_tf.swap_axes(*mdn_tf.make_sine_data(300, seed=0))
    a = fit_mdn(x_data, y_data, recipe=TINY, seed=5)
    b = fit_mdn(x_data, y_data, recipe=TINY, seed=5)
    np.testing.assert_array_equal(a.loss_history, b.loss_history)
    x_test = np.linspace(-12, 12, 7)
    p_a, mu_a, sigma_a = a.predict(x_test)
    np.testing.assert_array_equal(p_a, b.predict(x_test)[0])
    assert p_a.shape == mu_a.shape == sigma_a.shape == (7, 24)  # 12 components x 2 members
    np.testing.assert_allclose(p_a.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(sigma_a > 0)
    assert len(a.best_epochs) == 2 and all(5 <= e <= 40 for e in a.best_epochs)
    assert a.sigma_scale == b.sigma_scale and 0.25 < a.sigma_scale < 4
    sess, mdn = member_graph(a)  # the network in TF1 again: predict's numpy against it
    raw_sigma = sess.run(mdn.sigma_out, {mdn.x: x_test[:, None].astype(np.float32)})
    sess.close()
    np.testing.assert_allclose(sigma_a[:, :12], raw_sigma * a.sigma_scale, rtol=1e-5)


@pytest.mark.tf
def test_fit_mdn_with_one_member_retraces_the_notebook_loop(tf):
    """fit_mdn(recipe, seed=S) with one network = set_random_seed(S), build, sess.run loop."""
    x_data, y_data = mdn_tf.swap_axes(*mdn_tf.make_sine_data(200, seed=3))
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        tf1.set_random_seed(7)
        mdn = mdn_tf.build_mdn()
        sess.run(tf1.global_variables_initializer())
        feed = {mdn.x: x_data, mdn.y: y_data}
        losses = [sess.run([mdn.train_step, mdn.loss], feed)[1] for _ in range(30)]
    fitted = fit_mdn(x_data, y_data, recipe=Recipe(epochs=30), seed=7)
    np.testing.assert_array_equal(fitted.loss_history, losses)


def test_fit_mdn_seed_recipe_is_the_article(graph):
    recipe = mdn_tf.fit.RECIPES["article"]
    assert (recipe.mixture_size, recipe.hidden_units, recipe.learning_rate) == (12, (64, 128), 0.01)
    assert (recipe.epochs, recipe.stable_loss, recipe.ensemble) == (2500, False, 1)
    assert recipe.validation_fraction == 0 and recipe.weight_decay == 0


@pytest.mark.tf
def test_fit_mdn_rejects_bad_arguments():
    x_data, y_data = mdn_tf.swap_axes(*mdn_tf.make_sine_data(20, seed=0))
    with pytest.raises(ValueError, match="recipe"):
        fit_mdn(x_data, y_data, recipe="best")
    with pytest.raises(ValueError, match="same number of rows"):
        fit_mdn(x_data, y_data[:10])
    y_bad = y_data.copy()
    y_bad[3] = np.nan
    with pytest.raises(ValueError, match="y_data must be finite"):
        fit_mdn(x_data, y_bad)


def test_oob_sigma_scale_is_the_closed_form_maximum_likelihood_factor(rng):
    # one Gaussian component per member, mean 0: with a single scorer per point the best c
    # solves d/dc sum_i [log(c s_i) + y_i^2 / (2 c^2 s_i^2)] = 0, c^2 = mean(y_i^2 / s_i^2)
    n = 3000
    y = rng.normal(scale=1.7, size=(n, 1))
    y[-100:] = 50.0  # held out by no member: must not count
    ones, zeros = np.ones((n, 1)), np.zeros((n, 1))
    mixtures = [(ones, zeros, 1.0 * ones), (ones, zeros, 2.0 * ones)]
    held_out = np.zeros((2, n), dtype=bool)
    held_out[0, :1500], held_out[1, 1500:-100] = True, True
    s = np.where(np.arange(n) < 1500, 1.0, 2.0)[:-100]
    expected = np.sqrt(np.mean(y[:-100, 0] ** 2 / s**2))
    c = oob_sigma_scale(mixtures, held_out, y)
    assert c == pytest.approx(expected, rel=1e-4)
    # two scorers with the same mixture average to that mixture: the same answer
    held_out[1, :1500] = True
    mixtures = [(ones, zeros, 1.3 * ones)] * 2
    expected = np.sqrt(np.mean(y[:-100, 0] ** 2)) / 1.3
    assert oob_sigma_scale(mixtures, held_out, y) == pytest.approx(expected, rel=1e-4)


def test_oob_sigma_scale_needs_held_out_points():
    mixture = (np.ones((4, 1)), np.zeros((4, 1)), np.ones((4, 1)))
    with pytest.raises(ValueError, match="held_out must have shape"):
        oob_sigma_scale([mixture], np.ones((2, 4), dtype=bool), np.zeros((4, 1)))
    with pytest.raises(ValueError, match="no point"):
        oob_sigma_scale([mixture], np.zeros((1, 4), dtype=bool), np.zeros((4, 1)))
    with pytest.raises(ValueError, match="validation_fraction"):
        Recipe(calibrate_sigma=True)


@pytest.mark.parametrize(
    ("n", "fraction", "words"),
    [(1, 0.2, "holds out 1, leaving each member 0"), (10, 0.95, "holds out 10, leaving")],
)
def test_fit_mdn_rejects_splits_that_leave_a_member_nothing_to_train_on(n, fraction, words):
    # before: every member trained on no point and returned an all-NaN loss history
    recipe = Recipe(epochs=5, validation_fraction=fraction, ensemble=2)
    with pytest.raises(ValueError, match=words):
        fit_mdn(np.zeros((n, 1)), np.zeros((n, 1)), recipe=recipe, seed=0)
    with pytest.raises(ValueError, match=f"of {n} training point"):
        fit_mdn(np.zeros((n, 1)), np.zeros((n, 1)), recipe=recipe, seed=0)


@pytest.mark.tf
def test_fit_mdn_holds_out_at_least_one_point_and_trains_on_the_rest(capsys):
    x_data, y_data = mdn_tf.swap_axes(*mdn_tf.make_sine_data(3, seed=0))
    recipe = Recipe(epochs=5, check_every=5, validation_fraction=0.1, ensemble=1)
    fitted = fit_mdn(x_data, y_data, recipe=recipe, seed=0)  # round(0.3) = 0, so 1 held out
    assert capsys.readouterr().err == ""  # no progress bar unless asked
    assert np.all(np.isfinite(fitted.loss_history)) and len(fitted.val_history[0]) == 1


@pytest.mark.tf
@pytest.mark.slow
def test_fit_mdn_on_the_stacked_engine_is_reproducible_and_learns():
    # two members with validation, noise and decay: the stacked path through fit_mdn
    x_data, y_data = mdn_tf.swap_axes(*mdn_tf.make_sine_data(300, seed=0))
    recipe = Recipe(
        engine="stacked",
        epochs=60,
        check_every=5,
        validation_fraction=0.2,
        ensemble=2,
        input_noise=0.2,
        weight_decay=1e-4,
        stable_loss=True,
    )
    a = fit_mdn(x_data, y_data, recipe=recipe, seed=3)
    b = fit_mdn(x_data, y_data, recipe=recipe, seed=3)
    np.testing.assert_array_equal(a.loss_history, b.loss_history)
    np.testing.assert_array_equal(a.predict(x_data)[1], b.predict(x_data)[1])
    assert a.loss_history[-1] < a.loss_history[0] - 1
    assert all(v[-1][1] < v[0][1] for v in a.val_history)  # validation NLL fell too


@pytest.mark.tf
@pytest.mark.slow
def test_fit_mdn_members_do_not_depend_on_which_trainer_ran_them(monkeypatch):
    # on the graph path an ensemble's members train on one network per thread, reset for
    # each member: three members on one thread (one trainer, reused) or on three (a fresh
    # trainer each) give the same fit, bit for bit. A trainer that kept a member's Adam
    # state would be off by far more
    x_data, y_data = mdn_tf.swap_axes(*mdn_tf.make_sine_data(200, seed=0))
    recipe = Recipe(
        engine="graph", epochs=30, check_every=5, validation_fraction=0.2, ensemble=3,
        input_noise=0.2, target_noise=0.1, stable_loss=True,
    )  # fmt: skip
    fits = []
    for cpus in (1, 3):
        monkeypatch.setattr(os, "cpu_count", lambda cpus=cpus: cpus)
        fitted = fit_mdn(x_data, y_data, recipe=recipe, seed=5)
        fits.append((fitted.loss_history, fitted.val_history, fitted.predict(x_data)))
    (loss_a, val_a, pred_a), (loss_b, val_b, pred_b) = fits
    same = np.testing.assert_array_equal
    same(loss_a, loss_b)
    for a, b in [*zip(val_a, val_b), *zip(pred_a, pred_b)]:
        same(a, b)


def test_recipe_rejects_an_unknown_engine():
    with pytest.raises(ValueError, match="engine"):
        Recipe(engine="gpu")


@pytest.mark.tf
def test_fit_mdn_stops_on_a_non_finite_loss_and_says_why():
    # raw data far from scale 1 overflow the head within a few epochs: an error, not NaNs
    x = np.arange(200.0)
    with pytest.raises(mdn_tf.TrainingDiverged, match=r"member 1 of 1.*epoch \d+ of 20.*x spans"):
        fit_mdn(x, 2 * x, recipe=Recipe(epochs=20), seed=0)
    # the same data standardized train without trouble
    fitted = fit_mdn(x, 2 * x, recipe=Recipe(epochs=20, standardize=True), seed=0)
    assert np.all(np.isfinite(fitted.loss_history))


def test_recipe_checks_its_activation_when_built():
    with pytest.raises(ValueError, match="activation"):
        Recipe(activation="rleu")


@pytest.mark.tf
def test_minibatch_epochs_are_shuffled_passes_of_train_step(tf):
    # fit_mdn(batch_size=16) on 50 points: per epoch a fresh shuffle from the (seed, 1)
    # stream, 3 steps of 16 (2 points sit out), the epoch's loss the mean of its steps'
    x_data, y_data = mdn_tf.swap_axes(*mdn_tf.make_sine_data(50, seed=3))
    recipe = Recipe(epochs=4, batch_size=16, mixture_size=3, hidden_units=(8,))
    fitted = fit_mdn(x_data, y_data, recipe=recipe, seed=7)
    shuffle = np.random.default_rng((7, 1))
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        tf1.set_random_seed(7)
        mdn = mdn_tf.build_mdn(mixture_size=3, hidden_units=(8,))
        sess.run(tf1.global_variables_initializer())
        epoch_losses = []
        for _ in range(4):
            order = shuffle.permutation(50)
            steps = [
                sess.run([mdn.train_step, mdn.loss], {mdn.x: x_data[rows], mdn.y: y_data[rows]})[1]
                for rows in (order[0:16], order[16:32], order[32:48])
            ]
            epoch_losses.append(np.mean(np.float32(steps)))
        weights = sess.run([w for layer in mdn.layers for w in layer])
    np.testing.assert_array_equal(fitted.loss_history, epoch_losses)
    for got, want in zip(fitted.weights[0], weights):
        np.testing.assert_array_equal(got, want)
    # a batch as large as the data is the full batch
    full = fit_mdn(x_data, y_data, recipe=Recipe(epochs=3, hidden_units=(8,)), seed=7)
    same = fit_mdn(
        x_data, y_data, recipe=Recipe(epochs=3, hidden_units=(8,), batch_size=99), seed=7
    )
    np.testing.assert_array_equal(full.loss_history, same.loss_history)


def test_recipe_checks_its_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        Recipe(batch_size=0)
    with pytest.raises(ValueError, match="engine"):
        Recipe(engine="xla")  # "stacked" or "graph"


def test_covariance_rows_pair_the_heads_on_the_same_points(monkeypatch):
    from mdn_tf import evaluate

    class Model:  # full covariances gain 0.1 + 0.5 sin(3x) nats on each point, exactly
        def __init__(self, recipe):
            self.gain = recipe.covariance == "full"
            self.train_s = 2.0 if self.gain else 1.0

        def log_prob(self, x, y):
            return -0.5 * (y**2).sum(1) + self.gain * (0.1 + 0.5 * np.sin(3 * x[:, 0]))

    monkeypatch.setattr(evaluate, "fit_mdn", lambda x, y, recipe, seed: Model(recipe))
    (row,) = evaluate.evaluate_covariance(seeds=(0, 1), problems=("correlated",))
    paired = [0.1 + 0.5 * np.sin(3 * PROBLEMS["correlated"].splits(s)[0][2][:, 0]) for s in (0, 1)]
    margin = row.margin
    assert margin.mean == pytest.approx(np.mean([d.mean() for d in paired]), abs=1e-4)
    want = np.mean([d.std(ddof=1) / np.sqrt(len(d)) for d in paired])
    assert want > 0.002  # resolved at the table's 4 decimals
    assert margin.standard_error == pytest.approx(want, abs=1e-4)
    assert row.nll["diagonal"].mean - row.nll["full"].mean == pytest.approx(margin.mean, abs=2e-4)
    assert row.train_s["full"].mean == 2.0 and row.truth.mean < -0.5
    table = evaluate.covariance_to_markdown([row])
    assert f"| {margin.mean:.3f} ({margin.standard_error:.3f}) | 1.0, 2.0 |" in table


def test_sine_rows_print_as_a_table_and_as_json(monkeypatch, capsys):
    """python -m mdn_tf.evaluate's sine part: each recipe's NLLs over the seeds, the bound
    and the gap, as markdown and as JSON objects with the documented keys."""
    from mdn_tf import evaluate

    class Model:  # an NLL of 1.5 on the training points, 2 + seed / 10 on fresh ones
        def __init__(self, n, seed):
            self.n, self.seed, self.train_s = n, seed, 3.0

        def nll(self, x, y):
            return 1.5 if len(x) == self.n else 2.0 + self.seed / 10

    monkeypatch.setattr(evaluate, "fit_mdn", lambda x, y, recipe, seed: Model(len(x), seed))
    bound = 1.2345  # its integral takes a second; the first test here checks it
    monkeypatch.setattr(evaluate, "bayes_optimal_nll", lambda: bound)
    argv = ["--recipes", "article", "--seeds", "0", "1", "--n-held-out", "20"]
    evaluate.main([*argv, "--json"])
    (row,) = json.loads(capsys.readouterr().out)["sine"]
    assert row == {
        "recipe": "article",
        "n_train": 1000,
        "train_nll": {"mean": 1.5, "spread": 0.0},
        "held_out_nll": {"mean": 2.05, "spread": round(0.1 / np.sqrt(2), 4)},
        "bound": bound,
        "gap": {"mean": round(2.05 - bound, 4), "spread": round(0.1 / np.sqrt(2), 4)},
        "train_s": {"mean": 3.0, "spread": 0.0},
    }
    evaluate.main(argv)
    table = capsys.readouterr().out
    assert f"| article | 1000 | 1.500 ± 0.000 | 2.050 ± 0.071 | {bound:.3f} |" in table
