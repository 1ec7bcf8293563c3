"""Bad input raises early with a message naming the argument."""

import importlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import mdn_tf


def _train_members(group_size):
    network, recipe = mdn_tf.Network(), mdn_tf.Recipe()
    return mdn_tf.stacked.train_members(network, [], recipe, group_size=group_size)


@pytest.mark.tf
@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: mdn_tf.make_sine_data(0), ValueError, "n_samples"),
        (lambda: mdn_tf.make_sine_data(10.5), TypeError, "n_samples"),
        (lambda: mdn_tf.make_sine_data(True), TypeError, "n_samples"),
        (lambda: mdn_tf.make_sine_data(10, seed="a"), TypeError, "seed"),
        (lambda: mdn_tf.swap_axes(np.zeros((3, 1)), np.zeros((4, 1))), ValueError, "same number"),
        (lambda: mdn_tf.swap_axes(np.zeros((3, 2)), np.zeros((3, 1))), ValueError, "x_data"),
        (lambda: mdn_tf.build_mlp(hidden_units=0), ValueError, "hidden_units"),
        (lambda: mdn_tf.build_mlp(learning_rate=-0.1), ValueError, "learning_rate"),
        (lambda: mdn_tf.build_mdn(mixture_size=0), ValueError, "mixture_size"),
        (lambda: mdn_tf.build_mdn(hidden_units=()), ValueError, "hidden_units"),
        (lambda: mdn_tf.build_mdn(hidden_units=(64, -1)), ValueError, "hidden_units[1]"),
        (lambda: mdn_tf.build_mdn(epsilon=0.0), ValueError, "epsilon"),
        (lambda: mdn_tf.build_mdn(activation="rleu"), ValueError, "activation"),
        (lambda: mdn_tf.engine.Engine("mdn"), TypeError, "mdn must be an MDN"),
        (lambda: _train_members(group_size=0), ValueError, "group_size"),
        (lambda: _train_members(group_size=1.5), TypeError, "group_size"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(graph, call, error, words):
    with pytest.raises(error, match=words.replace("[", r"\[").replace("]", r"\]")):
        call()
    assert graph.get_operations() == []  # raised before adding anything to the graph


@pytest.mark.parametrize(
    ("p", "mu", "sigma", "words"),
    [
        ([[0.5, 0.6]], [[0.0, 1.0]], [[1.0, 1.0]], "sum to 1"),
        ([[-0.5, 1.5]], [[0.0, 1.0]], [[1.0, 1.0]], "non-negative"),
        ([[0.5, 0.5]], [[0.0, np.nan]], [[1.0, 1.0]], "mu_val must be finite"),
        ([[0.5, 0.5]], [[0.0, 1.0]], [[1.0, -1.0]], "sigma_val must be >= 0"),
        ([[0.5, 0.5]], [[0.0, 1.0, 2.0]], [[1.0, 1.0]], "must agree in N, K"),
        ([0.5, 0.5], [0.0, 1.0], [1.0, 1.0], r"shape \(N, K\)"),
    ],
)
def test_sampling_rejects_what_is_not_a_mixture(p, mu, sigma, words):
    with pytest.raises(ValueError, match=words):
        mdn_tf.sample_from_mixture(p, mu, sigma)


def test_sampling_rejects_bad_counts_and_rng():
    ok = ([[1.0]], [[0.0]], [[1.0]])
    with pytest.raises(ValueError, match="samples_per_x"):
        mdn_tf.sample_from_mixture(*ok, samples_per_x=0)
    with pytest.raises(TypeError, match="rng"):
        mdn_tf.sample_from_mixture(*ok, rng=np.random.RandomState(0))


@pytest.mark.tf
def test_dense_rejects_bad_layers(graph):
    x = tf.compat.v1.placeholder(tf.float32, (None, 2))
    with pytest.raises(ValueError, match="units"):
        mdn_tf.dense(x, 0)
    with pytest.raises(ValueError, match="activation"):
        mdn_tf.dense(x, 3, activation="softplus")
    with pytest.raises(ValueError, match="inputs"):
        mdn_tf.dense(np.zeros((2, 2)), 3)
    unknown_width = tf.compat.v1.placeholder(tf.float32, (None, None))
    with pytest.raises(ValueError, match=r"known last dimension .* got shape \[None, None\]"):
        mdn_tf.dense(unknown_width, 3)


@pytest.mark.tf
def test_graph_functions_in_eager_mode_say_how_to_switch(monkeypatch, tf):
    # the workers run in graph mode; pretend eager execution is on
    # (that importing mdn_tf prints no TensorFlow log lines is checked by nbval: a stray
    # line in a kernel's output would differ from the clean stored notebooks)
    monkeypatch.setattr(tf, "executing_eagerly", lambda: True)
    for build in (mdn_tf.build_mdn, mdn_tf.build_mlp):
        with pytest.raises(mdn_tf.GraphModeError, match=r"disable_eager_execution\(\)") as err:
            build()
        assert isinstance(err.value, ValueError) and isinstance(err.value, RuntimeError)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("epochs", 0, ValueError),
        ("epochs", 2.5, TypeError),
        ("ensemble", -1, ValueError),
        ("learning_rate", 0.0, ValueError),
        ("validation_fraction", 1.0, ValueError),
        ("input_noise", -0.1, ValueError),
        ("hidden_units", (), ValueError),
        ("stages", 0, ValueError),
        ("stage_noise", -1.0, ValueError),
        ("stage_learning_rate", 0.0, ValueError),
        ("calibrated_checks", 1, TypeError),
        ("stable_loss", "yes", TypeError),
        ("activation", "sigmoid", ValueError),
        ("covariance", "spherical", ValueError),
        ("mixture_size", 0, ValueError),
    ],
)
def test_recipes_reject_bad_fields(field, value, error):
    with pytest.raises(error, match=field):
        mdn_tf.Recipe(**{field: value})


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"stages": 2}, "stages > 1 needs validation checks"),
        ({"stages": 2, "validation_fraction": 0.2}, "stages > 1 needs engine='stacked'"),
        ({"calibrated_checks": True}, "calibrated_checks needs engine='stacked'"),
        ({"calibrated_checks": True, "engine": "stacked"}, "calibrated_checks needs calibrate"),
    ],
)
def test_recipes_refuse_options_that_need_others(fields, words):
    with pytest.raises(ValueError, match=words):
        mdn_tf.Recipe(**fields)


@pytest.mark.tf
def test_evaluation_functions_reject_bad_shapes_and_values():
    with pytest.raises(ValueError, match="same number of rows"):
        mdn_tf.held_out_nll([[1.0]], [[0.0]], [[1.0]], [0.0, 1.0])
    with pytest.raises(ValueError, match="y must be finite"):
        mdn_tf.held_out_nll([[1.0]], [[0.0]], [[1.0]], [np.inf])
    with pytest.raises(ValueError, match="sigma_val must be > 0"):
        mdn_tf.mixture_density([[1.0]], [[0.0]], [[-1.0]], [0.0])
    with pytest.raises(ValueError, match="sigma_val must be > 0"):  # a density needs a width
        mdn_tf.held_out_nll([[1.0]], [[0.0]], [[0.0]], [0.0])
    with pytest.raises(TypeError, match="monitor"):
        mdn_tf.fit_mdn(np.zeros((5, 1)), np.zeros((5, 1)), monitor=np.zeros((5, 1)))


def test_truth_functions_reject_bad_input():
    with pytest.raises(ValueError, match="x must be finite"):
        mdn_tf.inverse_branches(float("nan"))
    with pytest.raises(TypeError, match="x must be a real number"):
        mdn_tf.inverse_branches([1.0, 2.0])
    with pytest.raises(ValueError, match="x must be finite"):
        mdn_tf.inverse_mean([0.0, np.inf])
    with pytest.raises(TypeError, match="y must hold real numbers"):
        mdn_tf.inverse_density([0.0], ["a"])
    with pytest.raises(TypeError, match="x must hold real numbers"):
        mdn_tf.sine_curve("1.0")


@pytest.mark.tf
def test_losses_reject_mismatched_head_tensors(graph):
    y = tf.compat.v1.placeholder(tf.float32, (None, 1))
    a, b = (tf.compat.v1.placeholder(tf.float32, (None, 3)) for _ in range(2))
    c = tf.compat.v1.placeholder(tf.float32, (None, 4))
    with pytest.raises(ValueError, match="same K"):
        mdn_tf.mixture_nll(y, a, b, c)
    with pytest.raises(ValueError, match="y must have shape"):
        mdn_tf.mixture_nll_stable(a, a, b, b)
    with pytest.raises(ValueError, match="mu_out must have shape"):
        mdn_tf.mixture_nll(y, a, tf.compat.v1.placeholder(tf.float32, (None,)), a)
    with pytest.raises(ValueError, match=r"y must have shape \(batch, 1\), got \(None, 2\)"):
        mdn_tf.mixture_nll(tf.compat.v1.placeholder(tf.float32, (None, 2)), a, b, a)


@pytest.mark.tf
def test_losses_accept_tensors_of_unknown_width(graph, sess):
    # unknown dimensions are the feeder's to get right (TF1 shapes index to Dimension(None))
    y, p, mu, sigma = (tf.compat.v1.placeholder(tf.float32, (None, None)) for _ in range(4))
    loss = mdn_tf.mixture_nll(y, p, mu, sigma)
    stable = mdn_tf.mixture_nll_stable(y, tf.math.log(p), mu, tf.math.log(sigma))
    feed = {y: [[0.0]], p: [[0.5, 0.5]], mu: [[0.0, 0.0]], sigma: [[1.0, 1.0]]}
    half_log_two_pi = 0.5 * np.log(2 * np.pi)  # -log N(0; 0, 1)
    np.testing.assert_allclose(sess.run([loss, stable], feed), half_log_two_pi, rtol=1e-6)


def _runner(name="run_notebooks"):
    """tools/<name>.py, loaded from its file (it is a script, not in the package)."""
    path = Path(__file__).resolve().parent.parent / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("tool", "argv", "words"),
    [
        ("evaluate", ["--seeds", "-1"], "seed must be an integer >= 0, got -1"),
        ("evaluate", ["--seeds", "one"], "seed must be an integer, got 'one'"),
        ("evaluate", ["--n-held-out", "0"], "n_held_out must be a positive integer, got 0"),
        ("bench", ["--runs", "0"], "runs must be a positive integer, got 0"),
        ("runner", ["--figures"], "expected one argument"),
        ("runner", ["missing.ipynb"], "'missing.ipynb' is not an existing .ipynb file"),
        ("evaluate", ["--suite-seeds", "-2"], "seed must be an integer >= 0, got -2"),
        ("compare", ["knn", "--problems", "nowhere"], "invalid choice: 'nowhere'"),
        ("compare", ["sead"], "model must be 'knn' or one of"),
        ("compare", ["wide={not json"], "Expecting property name"),
        ("evaluate", ["--help"], None),
        ("bench", ["--help"], None),
        ("runner", ["--help"], None),
        ("compare", ["--help"], None),
    ],
)
def test_command_line_tools_answer_help_and_reject_bad_arguments(capsys, tool, argv, words):
    main = {
        "evaluate": lambda: importlib.import_module("mdn_tf.evaluate").main,
        "bench": lambda: _runner("bench").main,
        "runner": lambda: _runner().main,
        "compare": lambda: _runner("compare_recipes").main,
    }[tool]()
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out, err = capsys.readouterr()
    if words is None:  # --help: the usage on stdout, exit code 0
        assert exit_.value.code == 0 and out.startswith("usage:"), (out, err)
    else:  # argparse's usage line and message, exit code 2
        assert exit_.value.code == 2 and err.startswith("usage:") and words in err, err
