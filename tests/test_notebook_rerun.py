"""Every notebook survives re-running its cells in a live kernel, as a Jupyter user does.

Each notebook runs top to bottom, then every code cell a second time, in order, in the same
kernel: the graph-building cells reset the default graph and seed it again, so nothing
fails with "Variable ... already exists" and every assertion holds again. About a minute
and a half on two cores: ``make test-slow`` runs it, ``make test`` does not.
"""

import configparser
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
# the runner is a script of the repository, not part of the package: load it from its file
_spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "tools" / "run_notebooks.py")
run_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_notebooks)

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _sanitizer():
    """nbval's substitutions (tests/nbval_sanitize.cfg) as one function on text."""
    config = configparser.ConfigParser()
    config.read(ROOT / "tests" / "nbval_sanitize.cfg")
    rules = [(re.compile(config[s]["regex"]), config[s]["replace"]) for s in config.sections()]

    def sanitize(text):
        for pattern, replacement in rules:
            text = pattern.sub(replacement, text)
        return text

    return sanitize


def _texts(cell, sanitize):
    """The cell's text outputs (streams and plain-text results), as nbval compares them."""
    texts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            texts.append(out.text)
        elif "text/plain" in out.get("data", {}):
            texts.append(out.data["text/plain"])
    return sanitize("".join(texts))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_can_run_a_second_time(path):
    nb = nbformat.read(path, as_version=4)
    code = [(i, cell) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    sanitize = _sanitizer()
    passes = []
    with run_notebooks.kernel(nb, path.parent, timeout=run_notebooks.TIMEOUT_S) as client:
        with client.setup_kernel():
            for _ in range(2):
                for index, cell in code:
                    client.execute_cell(cell, index)  # raises CellExecutionError on an error
                passes.append([_texts(cell, sanitize) for _, cell in code])
    # the second pass says what the first said: the same graph (variable names, shapes), the
    # same training log; only numbers nbval ignores and the figures' random samples may move
    for (index, _), first, second in zip(code, *passes):
        assert second == first, f"cell {index}: {first!r} then {second!r}"
