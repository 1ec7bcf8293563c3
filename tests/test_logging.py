"""TensorFlow's start-up lines are hidden, its later warnings and errors are not.

Each case runs in a fresh Python process (start-up happens once per process), with
TF_CPP_MIN_LOG_LEVEL unset unless the case sets it.
"""

import os
import subprocess
import sys

import pytest

SCRIPT = """
import sys
import mdn_tf
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
x = tf.compat.v1.placeholder(tf.float32, [None])
with tf.compat.v1.Session() as sess:              # device set-up: cuInit without a GPU
    sess.run(x * 2, {x: [1.0]})
    sess.run(tf.function(lambda a: a * 3, jit_compile=True)(x), {x: [1.0]})  # XLA start
    sys.stderr.write("--- user code\\n")
    sys.stderr.flush()
    try:
        sess.run(tf.gather(x, [5]), {x: [1.0]})   # the user's own mistake
    except tf.errors.InvalidArgumentError:
        print("raised")
"""


def _run(level=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "raised\n"
    return result.stderr.split("--- user code\n")


@pytest.mark.slow
def test_start_up_is_silent_and_later_errors_show():
    start_up, later = _run()
    assert start_up == ""  # no I0000 lines, no cuInit error, no absl banner
    assert "indices[0] = 5 is not in [0, 1)" in later  # TensorFlow's own W line


@pytest.mark.slow
def test_a_level_the_user_sets_is_kept():
    start_up, later = _run("3")
    assert start_up == "" and later == ""
