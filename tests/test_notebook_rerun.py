"""Every notebook survives re-running its cells in a live kernel, as a Jupyter user does.

Each notebook runs top to bottom, then every code cell a second time, in order, in the same
kernel: the graph-building cells reset the default graph and seed it again, so nothing
fails with "Variable ... already exists" and every assertion holds again. About a minute
and a half on two cores: ``make test-slow`` runs it, ``make test`` does not.
"""

import nbformat
import pytest
from notebook_helpers import NOTEBOOKS, first_difference, run_notebooks, sanitizer, texts


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_can_run_a_second_time(path):
    nb = nbformat.read(path, as_version=4)
    code = [(i, cell) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    sanitize = sanitizer()
    passes = []
    with run_notebooks.kernel(nb, path.parent, timeout=run_notebooks.TIMEOUT_S) as client:
        with client.setup_kernel():
            for _ in range(2):
                for index, cell in code:
                    client.execute_cell(cell, index)  # raises CellExecutionError on an error
                passes.append([texts(cell, sanitize) for _, cell in code])
    # the second pass says what the first said: the same graph (variable names, shapes), the
    # same training log; only numbers nbval ignores and the figures' random samples may move
    for (index, _), first, second in zip(code, *passes):
        assert second == first, f"cell {index}: {first_difference(first, second)}"
