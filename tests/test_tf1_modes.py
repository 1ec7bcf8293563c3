"""The package under every TF1 setting a user may choose, each in a process of its own.

A process's mode is set once, so each setting gets a subprocess: the ``tf``-marked suite
under ``tf.compat.v1.disable_v2_behavior()`` (V1 shapes, ref variables, V1 control flow),
with TensorFlow imported before mdn_tf; the other two import orders (``slow``: make
test-slow); and TF2's default eager mode, where the losses must run and the graph
builders must say how to switch.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mdn_tf

TESTS = Path(__file__).resolve().parent


def _pytest_tf_suite(*options):
    """Run the tf-marked tests in a fresh process with the options; return its output."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-m", "tf", *options, str(TESTS)],
        capture_output=True,
        text=True,
        cwd=TESTS.parent,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout, result.stdout[-2000:]
    return result.stdout


def test_tf_suite_under_disable_v2_behavior_tensorflow_imported_first(tf1_mode):
    if tf1_mode != "eager":
        pytest.skip("launched from the eager-mode run only")
    _pytest_tf_suite("--tf1-mode", "v2", "--tf-first")


@pytest.mark.slow
@pytest.mark.parametrize(
    "options", [("--tf1-mode", "v2"), ("--tf1-mode", "eager", "--tf-first")], ids=str
)
def test_tf_suite_under_the_other_settings(tf1_mode, options):
    if tf1_mode != "eager":
        pytest.skip("launched from the eager-mode run only")
    _pytest_tf_suite(*options)


EAGER_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
import mdn_tf

y, p, mu, ls = (np.asarray(a, dtype=np.float32) for a in json.loads(sys.stdin.read()))
sigma = np.exp(ls)
out = {
    "eager": [
        float(mdn_tf.mixture_nll(y, p, mu, sigma)),
        float(mdn_tf.mixture_nll_stable(y, np.log(p), mu, ls)),
    ],
    "function": [
        float(tf.function(mdn_tf.mixture_nll)(y, p, mu, sigma)),
        float(tf.function(mdn_tf.mixture_nll_stable)(y, np.log(p), mu, ls)),
    ],
}
try:
    mdn_tf.build_mdn()
except mdn_tf.GraphModeError as err:
    out["build_mdn"] = str(err)
print(json.dumps(out))
"""


def test_losses_run_eagerly_and_in_tf_function_with_graph_values(tf, rng):
    n, k = 50, 4
    y = rng.normal(scale=3, size=(n, 1))
    p = rng.dirichlet(np.ones(k), size=n)
    mu = rng.normal(scale=3, size=(n, k))
    log_sigma = rng.normal(scale=0.5, size=(n, k))
    args = [a.astype(np.float32) for a in (y, p, mu, log_sigma)]
    result = subprocess.run(
        [sys.executable, "-c", EAGER_SCRIPT],
        input=json.dumps([a.tolist() for a in args]),
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(result.stdout)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        y_, p_, mu_, ls_ = args
        graph_values = sess.run(
            [
                mdn_tf.mixture_nll(y_, p_, mu_, np.exp(ls_)),
                mdn_tf.mixture_nll_stable(y_, np.log(p_), mu_, ls_),
            ]
        )
    np.testing.assert_allclose(got["eager"], graph_values, rtol=1e-6)
    np.testing.assert_allclose(got["function"], graph_values, rtol=1e-6)
    assert "disable_eager_execution()" in got["build_mdn"]
    assert "disable_v2_behavior()" in got["build_mdn"]
