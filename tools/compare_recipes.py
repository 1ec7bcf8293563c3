"""Compare recipes (and the k-NN baseline) on mdn_tf.problems: how the default was chosen.

    python tools/compare_recipes.py --seeds 0 1 --json out.json \
        knn default 'wide={"input_noise": 0.2, "target_noise": 0.2}'

A recipe is a name from RECIPES, "knn", or NAME=JSON: the default recipe with the JSON's
fields replaced. Prints one line per (problem, seed, model) as it goes: held-out NLL,
the truth's when known, and training seconds.
"""

import argparse
import dataclasses
import json
import sys
import time

import mdn_tf
from mdn_tf.problems import PROBLEMS, model_fit, score


def make_fit(spec):
    if "=" not in spec:
        return spec, model_fit(spec)
    name, fields = spec.split("=", 1)
    fields = json.loads(fields)
    if "hidden_units" in fields:
        fields["hidden_units"] = tuple(fields["hidden_units"])
    recipe = dataclasses.replace(mdn_tf.RECIPES["default"], **fields)
    return name, lambda x, y, seed: mdn_tf.fit_mdn(x, y, recipe=recipe, seed=seed)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="compare_recipes.py",
        description=__doc__.splitlines()[0],
        epilog="How long: about 25 s per (problem, seed) for an MDN recipe on a 2-core machine.",
    )
    parser.add_argument(
        "models",
        nargs="+",
        help="a recipe name from RECIPES, 'knn' (the k-NN Gaussian), or NAME=JSON: the "
        "default recipe with the JSON's fields replaced",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="data seeds (default: 0)")
    parser.add_argument(
        "--problems",
        nargs="+",
        default=list(PROBLEMS),
        choices=list(PROBLEMS),
        help="problems of mdn_tf.problems to score on (default: all eight)",
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="also write every row (problem, seed, model, NLL, truth) to FILE as a JSON "
        "list, rewritten after each row (default: none)",
    )
    args = parser.parse_args(argv)
    try:
        fits = [make_fit(spec) for spec in args.models]
    except (ValueError, TypeError) as err:  # an unknown name, bad JSON or a bad field
        parser.error(str(err))
    rows = []
    for problem in args.problems:
        for seed in args.seeds:
            for name, fit in fits:
                start = time.perf_counter()
                result = score(PROBLEMS[problem], fit, seed)
                wall = time.perf_counter() - start
                truth = result.truth
                scores = {"nll": result.nll, "truth": truth, "train_s": result.train_s}
                rows.append({"problem": problem, "seed": seed, "model": name, **scores})
                nll = "diverged" if result.nll is None else f"{result.nll:.4f}"
                print(
                    f"{problem:18s} {seed:3d} {name:12s} nll {nll:>8s}  truth "
                    f"{'-' if truth is None else f'{truth:.4f}':>8s}  {wall:6.1f} s",
                    flush=True,
                )
                if args.json:
                    with open(args.json, "w") as f:
                        json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
