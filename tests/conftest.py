"""Shared fixtures: TF1 graph mode, and a fresh seeded graph and session per test."""

import numpy as np
import pytest

# TensorFlow through mdn_tf, which loads it without its start-up log lines
from mdn_tf._tf import tf

tf.compat.v1.disable_eager_execution()


@pytest.fixture
def graph():
    """A new default graph with graph-level seed 0."""
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.set_random_seed(0)
        yield g


@pytest.fixture
def sess(graph):
    """A session on ``graph``; initialise variables yourself after building."""
    with tf.compat.v1.Session(graph=graph) as s:
        yield s


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
