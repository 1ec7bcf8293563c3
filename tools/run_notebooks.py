"""Execute notebooks top to bottom and store their outputs in place.

    python tools/run_notebooks.py [--figures DIR] notebooks/01_single_valued_fit.ipynb [...]

Each notebook runs in a fresh python3 kernel from its own folder. Its file is replaced
only after the whole run succeeded (write to a temporary file, then rename), so an error
or an interrupt leaves the stored notebook as it was. No timing metadata is recorded and
the notebook metadata is normalised, so two runs on one machine give identical files.
With --figures DIR the figures are also written to DIR/NN_k.png (the README's images).
The kernel talks over Unix sockets in a private temporary folder, not over TCP.
"""

import argparse
import base64
import contextlib
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from traitlets.config import Config

TIMEOUT_S = 600
METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def run(path, figures=None):
    """Execute one notebook and atomically replace it with the executed version."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    nb.metadata = nbformat.from_dict(METADATA)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    execute(
        nb,
        path.parent,
        timeout=TIMEOUT_S,
        record_timing=False,
        coalesce_streams=True,  # one stream output per cell, however the kernel flushed it
    )
    nb.metadata = nbformat.from_dict(METADATA)  # drop what the kernel added (versions)
    fd, tmp = tempfile.mkstemp(suffix=".ipynb", dir=path.parent, prefix=f".{path.stem}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    if figures is not None:
        save_figures(nb, Path(figures), path.stem[:2])


def execute(nb, folder, **options):
    """Run nb top to bottom in a fresh python3 kernel started in folder (see ``kernel``)."""
    with kernel(nb, folder, **options) as client:
        client.execute()  # the client owns its kernel and shuts it down, also on errors
    return nb


@contextlib.contextmanager
def kernel(nb, folder, **options):
    """A NotebookClient for nb, its python3 kernel started in folder; options go to it.

    The kernel's sockets are Unix sockets in a temporary folder (IPC transport): nothing
    listens on TCP, and ipykernel has no unencrypted-TCP warning to print. ``execute()``
    starts and stops a kernel of its own; for cell-by-cell runs use
    ``with client.setup_kernel(): client.execute_cell(cell, index)``.
    """
    with tempfile.TemporaryDirectory(prefix="mdn_tf-kernel-") as sockets:
        config = Config({"KernelManager": {"transport": "ipc", "ip": f"{sockets}/kernel"}})
        yield NotebookClient(
            nb,
            kernel_name="python3",
            config=config,
            resources={"metadata": {"path": str(folder)}},
            **options,
        )


SEED_LINE = "SEED = 2015"


def _fresh_copy(nb):
    """A copy of nb without outputs or execution counts, ready to execute."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def with_seed(nb, seed):
    """A copy of nb, outputs cleared, whose Setup cell says ``SEED = <seed>``: new data, new
    weights, new samples, as a reader who changes the seed gets."""
    nb = _fresh_copy(nb)
    setup = [c for c in nb.cells if c.cell_type == "code" and SEED_LINE in c.source]
    if len(setup) != 1:
        raise ValueError(f"expected one code cell with {SEED_LINE!r}, found {len(setup)}")
    setup[0].source = setup[0].source.replace(SEED_LINE, f"SEED = {int(seed)}")
    return nb


GRAPH_SEED_PATCH = """\
# added by the test: every graph seed moves by {offset}; the data and sampling seeds stay
import mdn_tf
import tensorflow as tf

_set_random_seed = tf.compat.v1.set_random_seed
tf.compat.v1.set_random_seed = lambda seed: _set_random_seed(
    None if seed is None else int(seed) + {offset}
)
"""


def with_graph_seed_offset(nb, offset):
    """A copy of nb, outputs cleared, that starts with a cell adding ``offset`` to every graph seed.

    ``tf.compat.v1.set_random_seed`` is what the notebooks' cells and ``mdn_tf.fit_mdn``
    call, so training starts from other initial weights while the data, the splits and
    the numpy samples stay: what another CPU does to a run. The added cell is cell 0;
    the notebook's own cells follow at their index + 1.
    """
    nb = _fresh_copy(nb)
    nb.cells.insert(0, nbformat.v4.new_code_cell(GRAPH_SEED_PATCH.format(offset=int(offset))))
    return nb


def save_figures(nb, folder, prefix):
    """Write the notebook's figures to <folder>/<prefix>_<k>.png."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{prefix}_*.png"):
        old.unlink()
    pngs = [
        out.data["image/png"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "image/png" in out.get("data", {})
    ]
    for k, png in enumerate(pngs, start=1):
        (folder / f"{prefix}_{k}.png").write_bytes(base64.b64decode(png))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="run_notebooks.py",
        description="Execute notebooks top to bottom and store their outputs in place.",
    )
    parser.add_argument(
        "notebooks", nargs="+", type=_notebook, help="NN_name.ipynb files, run in this order"
    )
    parser.add_argument(
        "--figures",
        metavar="DIR",
        type=Path,
        help="also write each figure to DIR/NN_k.png (default: no figure files)",
    )
    args = parser.parse_args(argv)
    for step, path in enumerate(args.notebooks, start=1):
        print(f"[{step}/{len(args.notebooks)}] executing {path} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        run(path, args.figures)
        print(f"{path}: executed in {time.perf_counter() - start:.1f} s", flush=True)


def _notebook(text):
    """An argparse type: an existing .ipynb file."""
    path = Path(text)
    if path.suffix != ".ipynb" or not path.is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is not an existing .ipynb file")
    return path


if __name__ == "__main__":
    main()
