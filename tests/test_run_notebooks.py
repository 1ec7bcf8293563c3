"""`make notebooks` writes a notebook only once its run finished: interrupts change nothing."""

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


def _start(path):
    return subprocess.Popen(
        [sys.executable, str(RUNNER), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_finished_run_stores_outputs(tmp_path):
    path = tmp_path / "01_ok.ipynb"
    _write(path, "print(6 * 7)")
    proc = _start(path)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    cell = nbformat.read(path, as_version=4).cells[1]
    assert cell.execution_count == 1 and cell.outputs[0].text == "42\n"
    assert "execution" not in cell.metadata  # no timing metadata


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_run_leaves_the_notebook_as_it_was(tmp_path, sig):
    path = tmp_path / "01_slow.ipynb"
    marker = tmp_path / "started"
    before = _write(path, f"open({str(marker)!r}, 'w').close()\nimport time\ntime.sleep(60)")
    proc = _start(path)
    deadline = time.monotonic() + 60
    while not marker.exists():  # wait until the kernel is executing the cell
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(sig)
    assert proc.wait(timeout=60) != 0
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01_slow.ipynb", "started"]
