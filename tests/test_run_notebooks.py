"""`make notebooks` writes a notebook only once its run finished: interrupts change nothing."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

RUNNER = Path(__file__).resolve().parent.parent / "tools" / "run_notebooks.py"


def _write(path, code):
    nb = new_notebook(cells=[new_markdown_cell("# t"), new_code_cell(code)])
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    }
    nbformat.write(nb, path)
    return path.read_bytes()


def _start(path, tmpdir):
    """The runner on path; its temporary files (the kernel's sockets) go under tmpdir,
    where a killed run's leftovers are pytest's to clean."""
    return subprocess.Popen(
        [sys.executable, str(RUNNER), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(tmpdir)},
    )


def test_stored_notebooks_ran_top_to_bottom_without_timing_metadata():
    """What a finished run stored (nbval re-runs them; this checks the stored form)."""
    paths = sorted((RUNNER.parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert len(paths) >= 4
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), path
        assert all("execution" not in c.metadata for c in nb.cells), path
        assert nb.metadata.kernelspec.name == "python3"
        assert set(nb.metadata) == {"kernelspec", "language_info"}, path


@pytest.mark.slow  # starts a kernel per signal: make test-slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_run_leaves_the_notebook_as_it_was(tmp_path, tmp_path_factory, sig):
    path = tmp_path / "01_slow.ipynb"
    marker = tmp_path / "started"
    before = _write(path, f"open({str(marker)!r}, 'w').close()\nimport time\ntime.sleep(60)")
    proc = _start(path, tmp_path_factory.mktemp("runner-tmp"))
    deadline = time.monotonic() + 60
    while not marker.exists():  # wait until the kernel is executing the cell
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(sig)
    assert proc.wait(timeout=60) != 0
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01_slow.ipynb", "started"]
