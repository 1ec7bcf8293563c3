"""make lab: JupyterLab from .venv, its kernels on Unix sockets with the Makefile's settings."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(port, path, method="GET"):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/{path}",
        method=method,
        data=b'{"name": "python3"}' if method == "POST" else None,
        headers={"Authorization": "token t"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read() or b"null")


def _stop(lab):
    """Stop ``make lab`` as a user does, with Ctrl-C and a second one to skip Jupyter's
    confirmation; returns its output. The Ctrl-C's go 2 s apart, pressed again while it
    runs: two signals sent at once can arrive as one, and Jupyter then waits for an answer
    (this failed on a busy machine). If it still runs after that, SIGTERM and fail."""
    for _ in range(5):
        try:
            os.killpg(lab.pid, signal.SIGINT)
            return lab.communicate(timeout=2)[0].decode()
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:  # the group is gone: it stopped
            break
    try:
        return lab.communicate(timeout=30)[0].decode()
    except subprocess.TimeoutExpired:
        os.killpg(lab.pid, signal.SIGTERM)
        output = lab.communicate(timeout=30)[0].decode()
        pytest.fail(f"make lab did not stop on Ctrl-C; stopped with SIGTERM:\n{output}")


@pytest.mark.slow  # starts JupyterLab and a kernel: make test-slow
def test_make_lab_serves_the_notebooks_with_ipc_kernels(tmp_path):
    port = _free_port()
    options = f"--no-browser --allow-root --ServerApp.port={port} --IdentityProvider.token=t"
    env = {**os.environ, "TMPDIR": str(tmp_path), "TF_NUM_INTRAOP_THREADS": "1"}
    lab = subprocess.Popen(
        ["make", "-s", "lab", f"LAB_OPTS={options}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(120):  # the server is up when its API answers
            try:
                contents = _api(port, "contents")
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start in 60 s")
        assert any(item["name"].startswith("05_") for item in contents["content"])
        kernel = _api(port, "kernels", "POST")
        sockets = list(tmp_path.glob("mdn_tf-lab-*/kernel-*"))
        for _ in range(60):
            if sockets:
                break
            time.sleep(0.5)
            sockets = list(tmp_path.glob("mdn_tf-lab-*/kernel-*"))
        assert sockets, "no kernel socket files: not on the IPC transport"
        _api(port, f"kernels/{kernel['id']}", "DELETE")
    finally:
        output = _stop(lab)
    assert "without encryption" not in output, output
    assert not list(tmp_path.glob("mdn_tf-lab-*")), "make lab left its socket folder behind"
