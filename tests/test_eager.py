"""TF2's default eager mode: the losses are plain tensor math, fit_mdn trains in graphs of
its own, and the graph builders say how to switch. This process runs in TF1 graph mode, so
the eager side runs in a subprocess."""

import json
import subprocess
import sys

import numpy as np
import pytest

import mdn_tf

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
x_fit, y_fit = mdn_tf.swap_axes(*mdn_tf.make_sine_data(100, seed=0))
fitted = mdn_tf.fit_mdn(x_fit, y_fit, recipe=mdn_tf.Recipe(epochs=20), seed=1)
out["fit_mdn"] = fitted.loss_history.tolist()  # fit_mdn builds graphs of its own
try:
    mdn_tf.build_mdn()
except mdn_tf.GraphModeError as err:
    out["build_mdn"] = str(err)
print(json.dumps(out))
"""


@pytest.mark.slow  # a TensorFlow process of its own: make test-slow
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
    fitted = mdn_tf.fit_mdn(
        *mdn_tf.swap_axes(*mdn_tf.make_sine_data(100, seed=0)),
        recipe=mdn_tf.Recipe(epochs=20),
        seed=1,
    )
    np.testing.assert_array_equal(got["fit_mdn"], fitted.loss_history)
    assert "disable_eager_execution()" in got["build_mdn"]
    assert "disable_v2_behavior()" in got["build_mdn"]
