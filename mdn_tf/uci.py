"""The default recipe on the UCI regression benchmark, beside the k-NN Gaussian and the
published figures.

    python -m mdn_tf.uci [--tables concrete energy ...] [--splits 5] [--json]

For each table shipped with the package (``mdn_tf.load_uci``) and each of its standard
splits (``mdn_tf.uci_splits``: 90% train, 10% test; 20 splits, 5 for protein), fit
``fit_mdn(x, y)`` with nothing set but ``seed`` = the split's index, and the k-NN Gaussian
(``fit_knn_gaussian``) on the same split; score each by its test NLL in the target's own
units, and report the mean over the splits with its standard error (the splits' standard
deviation over the square root of their number), as the field's papers do.

A table whose target takes few distinct values (``discrete_columns``: wine's scores are
the integers 3 to 8) is marked: a mixture can put spikes on the values, so its NLL is not
comparable with the Gaussian-output methods' figures.
"""

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from mdn_tf import _checks
from mdn_tf.baseline import fit_knn_gaussian
from mdn_tf.data import UCI_TABLES, discrete_columns, load_uci, uci_splits
from mdn_tf.fit import DiscreteTargetWarning, fit_mdn

# published test NLL (mean over the standard splits, Gaussian outputs) by method, one figure
# per table of UCI_TABLES in its order (concrete, energy, power plant, protein, wine)
_FIGURES = {
    # Gal & Ghahramani 2016, Table 1 (their log-likelihoods, negated)
    "MC dropout": (3.04, 1.99, 2.80, 2.89, 0.93),
    # Gal's DropoutUncertaintyExps README, "updated"
    "MC dropout, 10x epochs": (2.94, 1.72, 2.79, 2.87, 0.92),
    # Lakshminarayanan, Pritzel & Blundell 2017, Table 1
    "Deep Ensembles": (3.06, 1.38, 2.79, 2.83, 0.94),
    "NGBoost": (3.04, 0.60, 2.79, 2.81, 0.91),  # Duan et al. 2020, Table 1
    "Deep Evidential Regression": (3.01, 1.39, 2.81, 2.63, 0.89),  # Amini et al. 2020, Table 1
    "WGBoost": (2.83, 0.53, 2.60, None, None),  # Matsubara 2024, arXiv:2405.09536
}
PUBLISHED = {method: dict(zip(UCI_TABLES, nlls)) for method, nlls in _FIGURES.items()}


@dataclass(frozen=True)
class MeanAndError:
    """NLLs over splits: their mean, and its standard error (the splits' standard deviation
    over the square root of their number; 0 for one split)."""

    mean: float
    standard_error: float

    def __str__(self):
        return f"{self.mean:.3f} ± {self.standard_error:.3f}"


def _mean_and_error(values):
    values = np.asarray(values, dtype=float)
    error = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return MeanAndError(round(float(values.mean()), 4), round(float(error), 4))


@dataclass(frozen=True)
class TableRow:
    """One table's scores: its size, the splits scored, whether its target is discrete,
    each model's ("default", "knn") ``MeanAndError`` and per-split NLLs, the default's
    median seconds per fit, and the published figures by method (None where missing)."""

    table: str
    rows: int
    features: int
    splits: int
    discrete: bool
    nll: dict
    per_split: dict
    s_per_fit: float
    published: dict


def _fit_default(x, y, seed):
    """The default recipe, its discrete-target warning kept quiet (the table marks it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiscreteTargetWarning)
        return fit_mdn(x, y, seed=seed)


def score_table(name, splits=None, progress=None):
    """One table's ``TableRow``: the default recipe's and the k-NN Gaussian's test NLL per split
    (the first ``splits`` standard splits, or all), their means and standard errors, the
    default's seconds per fit, and whether the target is discrete."""
    x, y = load_uci(name)
    chosen = uci_splits(name)[:splits]
    nll = {"default": [], "knn": []}
    seconds = []
    for index, (train, test) in enumerate(chosen):
        start = time.perf_counter()
        fitted = _fit_default(x[train], y[train], seed=index)
        seconds.append(time.perf_counter() - start)
        nll["default"].append(fitted.nll(x[test], y[test]))
        knn = fit_knn_gaussian(x[train], y[train], seed=index)
        nll["knn"].append(knn.nll(x[test], y[test]))
        if progress is not None:
            progress.update()
    return TableRow(
        table=name,
        rows=len(x),
        features=x.shape[1],
        splits=len(chosen),
        discrete=bool(discrete_columns(y)),
        nll={model: _mean_and_error(v) for model, v in nll.items()},
        per_split={model: [round(float(v), 4) for v in vs] for model, vs in nll.items()},
        s_per_fit=round(float(np.median(seconds)), 2),
        published={method: figures.get(name) for method, figures in PUBLISHED.items()},
    )


def benchmark(tables=UCI_TABLES, splits=None, progress=False):
    """One ``TableRow`` (``score_table``) per table."""
    count = sum(len(uci_splits(t)[:splits]) for t in tables)
    with tqdm(total=count, desc="uci (split)", disable=not progress, file=sys.stderr) as bar:
        return [score_table(name, splits, bar) for name in tables]


def to_markdown(rows):
    """The rows as a markdown table: mean ± standard error over the splits, the better of
    the default and the k-NN Gaussian in bold (unless the target is discrete), then the
    published figures."""
    methods = list(PUBLISHED)
    lines = [
        "| table | n × d | splits | default | k-NN Gaussian | default s per fit | "
        + " | ".join(methods)
        + " |",
        "| --- | --- | ---: | ---: | ---: | ---: |" + " ---: |" * len(methods),
    ]
    for row in rows:
        scores = row.nll
        best = min(scores, key=lambda m: scores[m].mean)
        cells = []
        for model in ("default", "knn"):
            text = str(scores[model])
            cells.append(f"**{text}**" if model == best and not row.discrete else text)
        if row.discrete:
            cells[0] += " (not comparable: discrete target)"
        published = ["–" if v is None else f"{v:.2f}" for v in row.published.values()]
        lines.append(
            f"| {row.table} | {row.rows} × {row.features} | {row.splits} | "
            f"{' | '.join(cells)} | {row.s_per_fit:.1f} | {' | '.join(published)} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mdn_tf.uci", description=__doc__.split("\n\n")[0].replace("\n", " ")
    )
    parser.add_argument(
        "--tables",
        nargs="+",
        default=list(UCI_TABLES),
        choices=UCI_TABLES,
        help="the tables to score (default: all five)",
    )
    parser.add_argument(
        "--splits",
        type=_checks.cli_int(_checks.positive_int, "splits"),
        default=None,
        help="score only the first SPLITS standard splits of each table (default: all: 20, "
        "and 5 for protein)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the rows as JSON instead of a markdown table"
    )
    args = parser.parse_args(argv)
    rows = benchmark(args.tables, args.splits, progress=True)
    print(json.dumps([asdict(row) for row in rows], indent=2) if args.json else to_markdown(rows))


if __name__ == "__main__":
    sys.exit(main())
