"""The package under every TF1 setting a user may choose, each in a process of its own.

A process's mode is set once, before any graph is built. The suite itself runs under
``tf.compat.v1.disable_eager_execution()`` with mdn_tf imported first; here every
``tf``-marked test runs again in a subprocess under each other setting (make test-slow):
``disable_v2_behavior()`` (V1 shapes, ref variables, V1 control flow) with TensorFlow
imported first or mdn_tf first, and ``disable_eager_execution()`` with TensorFlow first.
TF2's eager mode is test_eager.py's.
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
OTHER_SETTINGS = {
    "v2-tensorflow-first": ("--tf1-mode", "v2", "--tf-first"),
    "v2-mdn_tf-first": ("--tf1-mode", "v2"),
    "eager-tensorflow-first": ("--tf1-mode", "eager", "--tf-first"),
}


@pytest.mark.slow
@pytest.mark.parametrize("options", OTHER_SETTINGS.values(), ids=OTHER_SETTINGS.keys())
def test_tf_suite_under_the_other_settings(tf1_mode, options):
    if tf1_mode != "eager":
        pytest.skip("launched from the eager-mode run only")
    result = subprocess.run(
        # without the xdist and nbval plugins: nbval's import of nbformat alone costs ~1 s
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:nbval", "-m", "tf"]
        + [*options, *TF_FILES],
        capture_output=True,
        text=True,
        cwd=TESTS.parent,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout, result.stdout[-2000:]
