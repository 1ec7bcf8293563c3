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
        os.killpg(lab.pid, signal.SIGINT)
        os.killpg(lab.pid, signal.SIGINT)  # Jupyter asks for a second Ctrl-C to skip confirming
        output = lab.communicate(timeout=30)[0].decode()
    assert "without encryption" not in output, output
    assert not list(tmp_path.glob("mdn_tf-lab-*")), "make lab left its socket folder behind"
