"""Score the training recipes against the best possible fit.

    python -m mdn_tf.evaluate [--json] [--seeds 0 1 2] [--recipes seed tuned]

For each recipe and data seed: train on 1000 swapped points, then measure the exact NLL
(``held_out_nll``) on those points and on 100 000 fresh ones, the Bayes-optimal bound
H(Y | X) (``bayes_optimal_nll``), the gap between held-out NLL and bound, and the
training time. Numbers that vary across seeds are given as mean and spread (the sample
standard deviation over the seeds).
"""

import argparse
import json
import sys

import numpy as np

from mdn_tf import _checks
from mdn_tf.data import make_sine_data, swap_axes
from mdn_tf.fit import RECIPES, fit_mdn
from mdn_tf.mixture import held_out_nll
from mdn_tf.truth import bayes_optimal_nll

N_TRAIN = 1000
N_HELD_OUT = 100_000
HELD_OUT_SEED_OFFSET = 10_000  # fresh data never overlaps a training seed


def _summary(values):
    values = np.asarray(values, dtype=float)
    spread = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"mean": round(float(values.mean()), 4), "spread": round(spread, 4)}


def evaluate(recipes=("seed", "tuned"), seeds=(0, 1, 2), n_held_out=N_HELD_OUT):
    """Return one row (a dict) per recipe, as printed by ``--json``."""
    bound = bayes_optimal_nll()
    rows = []
    for recipe in recipes:
        train, held, secs = [], [], []
        for seed in seeds:
            x_data, y_data = swap_axes(*make_sine_data(N_TRAIN, seed=seed))
            x_new, y_new = swap_axes(*make_sine_data(n_held_out, seed=HELD_OUT_SEED_OFFSET + seed))
            fitted = fit_mdn(x_data, y_data, recipe=recipe, seed=seed)
            train.append(held_out_nll(*fitted.predict(x_data), y_data))
            held.append(held_out_nll(*fitted.predict(x_new), y_new))
            secs.append(fitted.train_s)
            fitted.close()
        rows.append(
            {
                "recipe": recipe,
                "train_nll": _summary(train),
                "held_out_nll": _summary(held),
                "bound": round(bound, 4),
                "gap": _summary(np.array(held) - bound),
                "train_s": _summary(secs),
            }
        )
    return rows


def to_markdown(rows):
    """The rows as a markdown table, mean ± spread."""

    def cell(value):
        if isinstance(value, dict):
            return f"{value['mean']:.3f} ± {value['spread']:.3f}"
        return f"{value:.3f}"

    keys = ["train_nll", "held_out_nll", "bound", "gap", "train_s"]
    lines = [
        "| recipe | train NLL | held-out NLL | bound | gap | train s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(f"| {row['recipe']} | " + " | ".join(cell(row[k]) for k in keys) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mdn_tf.evaluate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list, one row per recipe")
    seed = _checks.cli_int(_checks.non_negative_int, "seed")
    parser.add_argument("--seeds", type=seed, nargs="+", default=[0, 1, 2], help="data seeds")
    parser.add_argument("--recipes", nargs="+", default=["seed", "tuned"], choices=sorted(RECIPES))
    parser.add_argument(
        "--n-held-out",
        type=_checks.cli_int(_checks.positive_int, "n_held_out"),
        default=N_HELD_OUT,
        help=f"fresh points per seed (default {N_HELD_OUT})",
    )
    args = parser.parse_args(argv)
    rows = evaluate(args.recipes, args.seeds, args.n_held_out)
    print(json.dumps(rows, indent=2) if args.json else to_markdown(rows))


if __name__ == "__main__":
    sys.exit(main())
