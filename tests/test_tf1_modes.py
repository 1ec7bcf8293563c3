"""The package under every TF1 setting a user may choose, each in a process of its own.

A process's mode is set once, so each setting gets a subprocess: the ``tf``-marked suite
under ``tf.compat.v1.disable_v2_behavior()`` (V1 shapes, ref variables, V1 control flow),
with TensorFlow imported before mdn_tf (the fit_mdn files' run is ``slow``); and the other
two import orders (``slow``: make test-slow). TF2's eager mode is test_eager.py's.
"""

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
# the files with tf-marked tests: collecting only these keeps the subprocess's start short
TF_FILES = sorted(
    str(path) for path in TESTS.glob("test_*.py") if "pytest.mark.tf" in path.read_text()
)
# fit_mdn end to end: compiling its programs again under disable_v2_behavior costs much of
# make test's budget, so these files' second run is make test-slow's; the graph, the losses,
# the engines' graphs and save/load stay in make test under both settings
FIT_FILES = {
    str(TESTS / name)
    for name in (
        "test_evaluation.py",
        "test_multidim.py",
        "test_robust_training.py",
        "test_stacked.py",
    )
}
OTHER_FILES = [path for path in TF_FILES if path not in FIT_FILES]


def _pytest_tf_suite(*options, marks="tf", files=TF_FILES):
    """Run the tests in ``files`` selected by ``marks`` in a fresh process with the options;
    return its output."""
    result = subprocess.run(
        # without the xdist and nbval plugins: nbval's import of nbformat alone costs ~2 s
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:nbval", "-m", marks]
        + [*options, *files],
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
    _pytest_tf_suite("--tf1-mode", "v2", "--tf-first", marks="tf and not slow", files=OTHER_FILES)


@pytest.mark.slow
def test_fit_mdn_tests_under_disable_v2_behavior(tf1_mode):
    if tf1_mode != "eager":
        pytest.skip("launched from the eager-mode run only")
    _pytest_tf_suite("--tf1-mode", "v2", "--tf-first", marks="tf", files=sorted(FIT_FILES))


@pytest.mark.slow
def test_slow_tf_tests_under_disable_v2_behavior(tf1_mode):
    if tf1_mode != "eager":
        pytest.skip("launched from the eager-mode run only")
    _pytest_tf_suite("--tf1-mode", "v2", "--tf-first", marks="tf and slow", files=OTHER_FILES)


@pytest.mark.slow
@pytest.mark.parametrize(
    "options", [("--tf1-mode", "v2"), ("--tf1-mode", "eager", "--tf-first")], ids=str
)
def test_tf_suite_under_the_other_settings(tf1_mode, options):
    if tf1_mode != "eager":
        pytest.skip("launched from the eager-mode run only")
    _pytest_tf_suite(*options)
