"""Run notebooks under other seeds and report which of their assertions hold.

    python tools/sweep_seeds.py [--seeds 0-9] [--graph] [--jobs 2] [--json FILE] NB.ipynb ...

By default each run changes the Setup cell's ``SEED = 2015`` (new data, new weights, new
samples: what a reader who picks another seed gets). With ``--graph`` only the graph seeds
move (``tools/run_notebooks.with_graph_seed_offset``): the same data, another training run,
as on another CPU. Each run is a fresh kernel; the stored notebooks are not touched. The
report gives, per notebook and seed, "ok" or the first failing cell and its error, and the
lines the notebook printed (``--json`` writes them all), which hold the numbers the
assertions test: the margins are read off them.
"""

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from nbclient.exceptions import CellExecutionError

sys.path.insert(0, str(Path(__file__).resolve().parent))  # a script beside run_notebooks.py
import run_notebooks  # noqa: E402


def run_one(path, seed, graph):
    """Execute one variant of the notebook; returns a dict for the report."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if graph:
        nb, shift = run_notebooks.with_graph_seed_offset(nb, seed), 1
    else:
        nb, shift = run_notebooks.with_seed(nb, seed), 0
    start = time.perf_counter()
    error = None
    try:
        run_notebooks.execute(
            nb, path.parent, timeout=run_notebooks.TIMEOUT_S, coalesce_streams=True
        )
    except CellExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}"
    printed = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or index < shift:
            continue
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                printed += [f"[{index - shift}] {line}" for line in out.text.splitlines() if line]
            elif out.output_type == "error":
                error = error or f"{out.ename}: {out.evalue}"
                printed.append(f"[{index - shift}] {out.ename}: {out.evalue}")
    return {
        "notebook": path.name,
        "seed": seed,
        "ok": error is None,
        "error": error,
        "seconds": round(time.perf_counter() - start, 1),
        "printed": printed,
    }


def _seeds(text):
    """'0-9' or '0,3,7' as a list of ints."""
    try:
        if "-" in text:
            first, last = (int(v) for v in text.split("-"))
            return list(range(first, last + 1))
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a seed range like 0-9 or 1,2,3"
        ) from None


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="sweep_seeds.py",
        description=__doc__.split("\n")[0],
        epilog="How long: one notebook run per seed, 5 to 60 s each on a 2-core machine.",
    )
    parser.add_argument(
        "notebooks", nargs="+", type=run_notebooks._notebook, help="NN_name.ipynb files"
    )
    parser.add_argument(
        "--seeds",
        type=_seeds,
        default=list(range(10)),
        help="seeds as a range (0-9) or a list (1,2,3): the Setup cell's SEED, or with "
        "--graph the offsets added to every graph seed (default: 0-9)",
    )
    parser.add_argument(
        "--graph",
        action="store_true",
        help="move only the graph seeds (new initial weights, the same data)",
    )
    parser.add_argument(
        "--jobs", type=int, default=2, help="notebook kernels at a time (default: 2)"
    )
    parser.add_argument(
        "--json", type=Path, help="write every run's report to this file (default: none)"
    )
    args = parser.parse_args(argv)
    jobs = [(str(path), seed, args.graph) for path in args.notebooks for seed in args.seeds]
    results = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for result in pool.map(run_one, *zip(*jobs)):
            results.append(result)
            status = "ok" if result["ok"] else f"FAILED {result['error']}"
            print(f"{result['notebook']} seed {result['seed']}: {status} ({result['seconds']} s)")
            sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    for name in dict.fromkeys(r["notebook"] for r in results):
        runs = [r for r in results if r["notebook"] == name]
        print(f"{name}: {sum(r['ok'] for r in runs)} of {len(runs)} seeds hold every assertion")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
