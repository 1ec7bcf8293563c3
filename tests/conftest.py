"""Shared fixtures: TF1 graph mode, and a fresh seeded graph and session per test.

TensorFlow is imported inside the fixtures, not here: under pytest-xdist the controller
process loads this file too, and it runs no test that needs TensorFlow.
"""

import numpy as np
import pytest


@pytest.fixture(scope="session", autouse=True)
def tf():
    """TensorFlow, through mdn_tf (quiet start-up), with eager execution off."""
    from mdn_tf._tf import tf

    tf.compat.v1.disable_eager_execution()
    return tf


@pytest.fixture
def graph(tf):
    """A new default graph with graph-level seed 0."""
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.set_random_seed(0)
        yield g


@pytest.fixture
def sess(tf, graph):
    """A session on ``graph``; initialise variables yourself after building."""
    with tf.compat.v1.Session(graph=graph) as s:
        yield s


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
