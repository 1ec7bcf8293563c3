"""Shared fixtures: TF1 graph mode, and a fresh seeded graph and session per test.

The TensorFlow tests (marked ``tf``) run under either TF1 setting a user may choose:

    pytest --tf1-mode eager   tf.compat.v1.disable_eager_execution()  (the notebooks')
    pytest --tf1-mode v2      tf.compat.v1.disable_v2_behavior()      (the migration guide's)

``--tf-first`` imports ``tensorflow`` and switches the mode before ``mdn_tf`` is imported;
by default ``mdn_tf`` comes first. Both make targets run the suite in the first setting;
``make test-slow``, through ``test_tf1_modes.py``, runs the ``tf`` tests again in a
subprocess under each other setting and import order.

A mode can be set once per process, before any graph is built, so it is set while pytest
configures itself, before the test modules (which import mdn_tf) are collected. Under
pytest-xdist the controller process collects nothing and never loads TensorFlow.
"""

import importlib

import numpy as np
import pytest

MODES = {"eager": "disable_eager_execution", "v2": "disable_v2_behavior"}


def pytest_addoption(parser):
    parser.addoption(
        "--tf1-mode",
        choices=sorted(MODES),
        default="eager",
        help="TF1 setting for the tests: disable_eager_execution (eager) or "
        "disable_v2_behavior (v2)",
    )
    parser.addoption(
        "--tf-first",
        action="store_true",
        help="import tensorflow and set the mode before mdn_tf is imported",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "tf: builds or runs TensorFlow graphs (run in both modes)")
    config.addinivalue_line("markers", "slow: outside make test's budget; make test-slow runs it")
    if config.getoption("numprocesses", None) and not hasattr(config, "workerinput"):
        return  # the xdist controller: it runs no test
    order = ["tensorflow", "mdn_tf"] if config.getoption("--tf-first") else ["mdn_tf"]
    for name in order:
        importlib.import_module(name)
    import tensorflow as tf

    getattr(tf.compat.v1, MODES[config.getoption("--tf1-mode")])()


# nbval re-runs notebook 3 (the article's MDN) in make test and the others in make test-slow:
# a notebook's kernel spends about 3 s starting and importing TensorFlow, which notebooks 1
# and 2 (the article's MLP, which test_graph.py also trains) would pay for about 1 s of
# work each; notebook 4 trains an 8-network ensemble, 5 two networks for 8000 epochs in
# all, 6 an ensemble of 5 and 7 two ensembles on 5000 points
MAKE_TEST_NOTEBOOKS = {"03_mdn_fit_and_sampling.ipynb"}


# the longest files first, so that under ``-n 2 --dist loadfile --no-loadscope-reorder`` the
# two workers finish together: the TF1-mode subprocesses (make test-slow's longest file), the
# notebooks in the order given on the command line, the unit files of 3 s or more (make
# test), then the rest
RUN_FIRST = "test_tf1_modes.py"
LONG_FILES = (
    "test_evaluation.py",
    "test_stacked.py",
    "test_robust_training.py",
    "test_multidim.py",
)


def _run_order(item):
    if item.path.name == RUN_FIRST:
        return 0
    if item.path.suffix == ".ipynb":
        return 1
    return 2 if item.path.name in LONG_FILES else 3


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.suffix == ".ipynb" and item.path.name not in MAKE_TEST_NOTEBOOKS:
            item.add_marker(pytest.mark.slow)
    items.sort(key=_run_order)  # stable: a file's tests and a notebook's cells keep their order


@pytest.fixture(scope="session")
def tf():
    """TensorFlow, in the TF1 mode pytest_configure set."""
    import tensorflow as tf

    assert not tf.executing_eagerly()
    return tf


@pytest.fixture(scope="session")
def tf1_mode(request):
    """'eager' or 'v2': which TF1 setting this run uses."""
    return request.config.getoption("--tf1-mode")


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
