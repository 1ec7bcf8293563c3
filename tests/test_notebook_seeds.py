"""The stored outputs hold for any training run, not only the one that made them.

Another CPU (AVX-512 against AVX2), another thread count or oneDNN changes TensorFlow's
rounding, and thousands of Adam steps turn that into another training run. This test makes
other training runs on purpose: it re-executes a copy of each notebook whose graph seeds
(``tf.compat.v1.set_random_seed``, which the cells and ``fit_mdn`` call) are moved by an
offset, while the data and sampling seeds stay. Then

- every cell runs, so every assertion holds for that run too, and
- each cell's text outputs, after nbval's sanitizer (tests/nbval_sanitize.cfg), equal the
  stored ones: every number that comes from training is printed in a form it masks.

About five minutes on two cores: ``make test-slow`` runs it.
"""

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError
from notebook_helpers import NOTEBOOKS, first_difference, run_notebooks, sanitizer, texts

OFFSETS = (1, 2)  # two more training runs per notebook


@pytest.mark.slow
@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_hold_for_another_training_run(path, offset):
    stored = nbformat.read(path, as_version=4)
    nb = run_notebooks.with_graph_seed_offset(stored, offset)
    try:
        # streams coalesced, as make notebooks stores them
        run_notebooks.execute(
            nb, path.parent, timeout=run_notebooks.TIMEOUT_S, coalesce_streams=True
        )
    except CellExecutionError as exc:
        failed = next(
            (
                i
                for i, c in enumerate(nb.cells[1:])
                if c.get("outputs") and any(o.output_type == "error" for o in c.outputs)
            ),
            "?",
        )
        pytest.fail(
            f"{path.name}, graph seeds + {offset}: cell {failed} raised {exc.ename}: {exc.evalue}",
            pytrace=False,
        )
    sanitize = sanitizer()
    for index, (old, new) in enumerate(zip(stored.cells, nb.cells[1:])):
        if old.cell_type != "code":
            continue
        expected, actual = texts(old, sanitize), texts(new, sanitize)
        assert actual == expected, (
            f"{path.name}, graph seeds + {offset}, cell {index}: "
            f"{first_difference(expected, actual)}"
        )
