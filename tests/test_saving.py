"""Saving and loading a fitted MDN, and the questions a fitted model answers.

``make test`` runs a save and load with an edited file, and the questions; ``make test-slow``
the round trips and the other damaged, interrupted and overwritten saves.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from tf_reference import member_graph

import mdn_tf
from mdn_tf import saving
from mdn_tf.fit import Recipe

pytestmark = pytest.mark.tf

SMALL = Recipe(mixture_size=3, hidden_units=(16,), epochs=40, ensemble=2, standardize=True)


@pytest.fixture(scope="module")
def fitted():
    # two inputs and two outputs far from scale 1, an ensemble of 2, standardized
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, size=(200, 2)) * [1.0, 50.0] + [0.0, 300.0]
    y = np.stack([np.sin(x[:, 0]), x[:, 1] / 100.0], axis=1) + 0.1 * rng.normal(size=(200, 2))
    model = mdn_tf.fit_mdn(x, y, recipe=SMALL, seed=1)
    yield model, x, y


@pytest.mark.slow
def test_a_saved_model_predicts_the_same_in_a_fresh_process(fitted, tmp_path):
    model, x, _ = fitted
    model.save(tmp_path / "model")
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys, numpy as np, mdn_tf, tensorflow as tf\n"
        "tf.compat.v1.disable_eager_execution()\n"
        "p, mu, s = mdn_tf.load_mdn(sys.argv[1]).predict(np.load(sys.argv[2]))\n"
        "np.savez(sys.argv[3], p=p, mu=mu, s=s)\n"
    )
    out = tmp_path / "out.npz"
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "model"), str(tmp_path / "x.npy"), str(out)],
        check=True,
        capture_output=True,
    )
    with np.load(out) as got:
        for name, want in zip(("p", "mu", "s"), model.predict(x)):
            np.testing.assert_array_equal(got[name], want)
    files = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert files == ["model.json", "weights.npz"]


@pytest.mark.slow
def test_load_keeps_the_recipe_and_the_training_record(fitted, tmp_path):
    model, x, _ = fitted
    loaded = mdn_tf.load_mdn(model.save(tmp_path / "m"))
    assert loaded.recipe == model.recipe and loaded.network == model.network
    np.testing.assert_array_equal(loaded.loss_history, model.loss_history)
    assert loaded.best_epochs == model.best_epochs
    assert loaded.sigma_scale == model.sigma_scale


def _saved(fitted, tmp_path):
    return fitted[0].save(tmp_path / "m")


@pytest.mark.slow
def test_a_missing_file_is_named(fitted, tmp_path):
    path = _saved(fitted, tmp_path)
    (path / "weights.npz").unlink()
    with pytest.raises(FileNotFoundError, match="weights.npz"):
        mdn_tf.load_mdn(path)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        mdn_tf.load_mdn(tmp_path / "nothing")


@pytest.mark.slow
def test_a_truncated_weights_file_is_named(fitted, tmp_path):
    path = _saved(fitted, tmp_path)
    data = (path / "weights.npz").read_bytes()
    (path / "weights.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="weights.npz.*truncated"):
        mdn_tf.load_mdn(path)


def test_an_edited_or_truncated_model_file_is_named(fitted, tmp_path):
    path = _saved(fitted, tmp_path)
    model = json.loads((path / "model.json").read_text())
    model["sigma_scale"] = 2.0
    (path / "model.json").write_text(json.dumps(model))
    with pytest.raises(ValueError, match="model.json.*edited"):
        mdn_tf.load_mdn(path)
    (path / "model.json").write_text('{"format": "mdn_tf.Fitt')
    with pytest.raises(ValueError, match="model.json: not valid JSON"):
        mdn_tf.load_mdn(path)


@pytest.mark.slow
def test_another_format_version_is_named(fitted, tmp_path):
    path = _saved(fitted, tmp_path)
    model = json.loads((path / "model.json").read_text())
    model["format_version"] = 99
    model["model_sha256"] = saving._model_digest(model)
    (path / "model.json").write_text(json.dumps(model))
    with pytest.raises(ValueError, match="model.json: format version 99"):
        mdn_tf.load_mdn(path)


@pytest.mark.slow
def test_an_interrupted_save_leaves_nothing_under_the_name(fitted, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(saving.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fitted[0].save(tmp_path / "m")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary twin


@pytest.mark.slow
def test_save_refuses_to_overwrite_unless_asked(fitted, tmp_path):
    path = _saved(fitted, tmp_path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fitted[0].save(path)
    fitted[0].save(path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    mdn_tf.load_mdn(path)


def test_the_questions_agree_with_the_numpy_functions(fitted):
    model, x, y = fitted
    mixture = model.predict(x[:20])
    np.testing.assert_array_equal(
        model.log_prob(x[:20], y[:20]), mdn_tf.mixture_log_likelihood(*mixture, y[:20])
    )
    assert model.nll(x[:20], y[:20]) == pytest.approx(-model.log_prob(x[:20], y[:20]).mean())
    p, mu, sigma = mixture
    mean = np.einsum("nk,nkd->nd", p, mu)
    var = np.einsum("nk,nkd->nd", p, sigma**2 + mu**2) - mean**2
    np.testing.assert_allclose(model.mean(x[:20]), mean, rtol=1e-10)
    # E[y^2] - E[y]^2 cancels digits where the mean is large; std sums squared deviations
    np.testing.assert_allclose(model.std(x[:20]), np.sqrt(var), rtol=1e-4)
    assert model.mode(x[:20]).shape == (20, 2)
    draws = model.sample(x[:20], samples_per_x=5, rng=0)
    assert draws.shape == (20, 5, 2)
    np.testing.assert_array_equal(draws, mdn_tf.sample_from_mixture(*mixture, 5, rng=0))


@pytest.mark.slow
def test_one_output_cdf_and_quantile_invert_each_other():
    x, y = mdn_tf.swap_axes(*mdn_tf.make_sine_data(300, seed=0))
    model = mdn_tf.fit_mdn(x, y, recipe=Recipe(epochs=30, hidden_units=(16,)), seed=0)
    q = model.quantile(x[:10], [0.1, 0.5, 0.9])
    assert q.shape == (10, 3) and np.all(np.diff(q, axis=1) > 0)
    for j, level in enumerate((0.1, 0.5, 0.9)):
        np.testing.assert_allclose(model.cdf(x[:10], q[:, j]), level, atol=1e-8)
    assert model.sample(x[:10], samples_per_x=4).shape == (10, 4)
    # the model is arrays: after the with block (which releases nothing) it still answers
    np.testing.assert_array_equal(model.quantile(x[:10], [0.1, 0.5, 0.9]), q)


def test_quantile_and_moments_against_closed_forms():
    # one Gaussian: mu + sigma * Phi^-1(q); two: moments by the law of total variance
    q = mdn_tf.mixture_quantile([[1.0]], [[2.0]], [[3.0]], [0.025, 0.5, 0.8])
    np.testing.assert_allclose(q[0], 2.0 + 3.0 * stats.norm.ppf([0.025, 0.5, 0.8]), atol=1e-8)
    p, mu, sigma = [[0.25, 0.75]], [[-2.0, 2.0]], [[1.0, 0.5]]
    mean, std = mdn_tf.mixture_moments(p, mu, sigma)
    assert mean[0, 0] == pytest.approx(1.0)
    assert std[0, 0] ** 2 == pytest.approx(0.25 * 1 + 0.75 * 0.25 + 0.25 * 9 + 0.75 * 1)
    median = mdn_tf.mixture_quantile(p, mu, sigma, 0.5)[0, 0]
    assert mdn_tf.mixture_cdf(p, mu, sigma, [median])[0] == pytest.approx(0.5, abs=1e-9)
    with pytest.raises(ValueError, match="q must be probabilities"):
        mdn_tf.mixture_quantile(p, mu, sigma, [0.0, 0.5])


def test_far_from_the_data_sigmas_stay_positive(fitted):
    """A relu network is linear far from its data, so some log-sigma falls below -104,
    where float32 exp gives 0; predict takes exp in float64, so every question is still
    answered there (the density is that of a very narrow component, not undefined)."""
    model, x, y = fitted
    sess, mdn = member_graph(model)
    far = x[:1] * 0 + np.array([[0.0, 300.0]])
    # scale x until the network's own float32 sigma underflows somewhere
    for scale in 10.0 ** np.arange(1, 9):
        far_x = (far + [scale, 0.0] - model._scaling[0]) / model._scaling[1]
        if np.any(sess.run(mdn.sigma_out, {mdn.x: far_x.astype(np.float32)}) == 0):
            break
    else:
        pytest.fail("no sigma underflowed: the test needs a larger scale")
    far = far + [scale, 0.0]
    p, mu, sigma = model.predict(far)
    assert np.all(sigma > 0)
    log_sigma = sess.run(mdn.log_sigma, {mdn.x: far_x.astype(np.float32)})
    sess.close()
    # predict's float64 log-sigma against TF's float32 one: equal to float32 rounding
    np.testing.assert_allclose(
        np.log(sigma[:, :3] / model._scaling[3]), log_sigma, rtol=1e-5, atol=1e-4
    )
    assert model.log_prob(far, y[:1]).shape == (1,)  # no ValueError, -inf at worst
    assert np.all(np.isfinite(model.mean(far))) and model.sample(far, 3, rng=0).shape == (1, 3, 2)


def test_a_folder_saved_by_the_release_before_the_arrays_still_loads():
    # tests/data/v1_model was written by mdn_tf before FittedMDN held arrays (one TF session
    # per member, predict in TensorFlow's float32); v1_predict.npz holds what that model's
    # predict returned on a grid. It loads, builds no graph, and predicts the same numbers
    # to float32 rounding (predict is now numpy, in float64)
    from pathlib import Path

    data = Path(__file__).parent / "data"
    model = mdn_tf.load_mdn(data / "v1_model")
    assert json.loads((data / "v1_model" / "model.json").read_text())["format_version"] == 1
    assert len(model.weights) == 2 and model.recipe.ensemble == 2
    with np.load(data / "v1_predict.npz") as want:
        for got, name in zip(model.predict(want["x"]), ("p", "mu", "sigma")):
            np.testing.assert_allclose(got, want[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("covariance, version", [("diagonal", 1), ("full", 2), (None, 1)])
def test_the_format_version_says_which_head(tmp_path, covariance, version):
    # full covariances widen the out layer: version 2, which a release reading only
    # version 1 refuses by name; diagonal models (and settings from before) stay version 1
    settings = {} if covariance is None else {"covariance": covariance}
    path = saving.write(tmp_path / "m", {"settings": settings}, {"w": np.zeros(2)})
    model = saving._read_model(path)
    assert model["format_version"] == version and model["settings"] == settings
    model["format_version"] = 3
    model["model_sha256"] = saving._model_digest(model)
    (path / "model.json").write_text(json.dumps(model))
    with pytest.raises(ValueError, match="format version 3.*reads versions 1 and 2"):
        saving._read_model(path)
