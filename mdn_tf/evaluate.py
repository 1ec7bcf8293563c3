"""Score the training recipes against the best possible fit, and the robot arm against Bishop.

    python -m mdn_tf.evaluate [--json] [--seeds 0 1 2] [--recipes article tuned large]
        [--problems sine arm suite covariance] [--suite-seeds 0 1 2] [--n-held-out 100000]

The article's problem ("sine"): for each recipe and data seed, train on 1000 swapped
points (100 000 for the minibatch recipe "large"), then measure the exact NLL
(``held_out_nll``) on those points and on 100 000 fresh ones, the Bayes-optimal bound
H(Y | X) (``bayes_optimal_nll``), the gap between held-out NLL and bound, and the training
time.

Bishop's robot arm ("arm", notebook 5): for each data seed, train a least-squares network
and an MDN (recipe "arm": three of Bishop's networks, averaged) on 1000 poses, predict the
angles for 1000 fresh positions (the MDN's most probable solution, ``mixture_mode``), and
measure the RMS distance between each target and the position those angles reach, beside
Bishop's Table 1.

Eleven problems of several kinds ("suite", ``mdn_tf.problems``): simulated ones
(multimodal, heteroscedastic, small n, two inputs and outputs, scales far from 1, 10 000
points, correlated outputs, near-deterministic with irrelevant and constant inputs, small
and precise) scored on 20 000 fresh points beside the true NLL, and two real data sets
(Old Faithful, the motorcycle data) by 5-fold cross-validation. Each is fitted by the
k-NN Gaussian baseline and the recipes "article", "tuned" and "default".

Diagonal against full covariance ("covariance"): the default recipe both ways on the
suite's problems with several outputs (the noisy arm and the correlated problem), where
the two heads differ (with one output they are the same network).

Numbers that vary across seeds are given as mean and spread (the sample standard deviation
over the seeds).
"""

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from mdn_tf import _checks
from mdn_tf._tf import tf, tf1
from mdn_tf.data import arm_rms_error, make_arm_data, make_sine_data, swap_axes
from mdn_tf.fit import _mean_and_scale, fit_mdn
from mdn_tf.graph import build_mlp
from mdn_tf.mixture import mixture_mode
from mdn_tf.problems import MODELS, PROBLEMS, model_fit, pooled_truth, score
from mdn_tf.recipes import default_recipe
from mdn_tf.truth import bayes_optimal_nll

N_TRAIN = 1000
N_HELD_OUT = 100_000
HELD_OUT_SEED_OFFSET = 10_000  # fresh data never overlaps a training seed
SINE_RECIPES = ("article", "tuned", "large")
# training points per recipe: the article's 1000, and 100 000 for the minibatch recipe
TRAIN_SIZES = {"large": 100_000}
# Bishop 1994, Table 1: RMS Euclidean distance between the desired and the achieved
# end-effector position, 1000 test points (least squares: 20 tanh units; MDN: 2 kernels)
BISHOP_ARM_RMS = {"least squares": 0.0578, "MDN": 0.0053}
# notebook 5's least-squares network: 20 tanh units, Adam 0.01, 3000 full-batch epochs
LEAST_SQUARES_UNITS, LEAST_SQUARES_LEARNING_RATE, LEAST_SQUARES_EPOCHS = 20, 0.01, 3000


@dataclass(frozen=True)
class Summary:
    """Values over seeds: their mean and sample standard deviation (0 for one value)."""

    mean: float
    spread: float

    def __str__(self):
        return f"{self.mean:.3f} ± {self.spread:.3f}"


def _summary(values):
    """The ``Summary`` of values; None when one is None (a fit diverged, a truth unknown)."""
    if any(v is None for v in values):
        return None
    values = np.asarray(values, dtype=float)
    spread = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return Summary(round(float(values.mean()), 4), round(spread, 4))


@dataclass(frozen=True)
class SineRow:
    """A recipe on the article's problem: its NLLs on its training points and on fresh
    ones, the bound H(Y | X), the held-out gap to it and the seconds per fit."""

    recipe: str
    n_train: int
    train_nll: Summary
    held_out_nll: Summary
    bound: float
    gap: Summary
    train_s: Summary


@dataclass(frozen=True)
class ArmRow:
    """A model on Bishop's robot arm: its RMS position error, and Bishop's (or None)."""

    model: str
    rms: Summary
    bishop: float | None


@dataclass(frozen=True)
class SuiteRow:
    """A problem of the suite: each model's held-out NLL and seconds per fit (None where it
    diverged on a seed), and the truth's NLL (None when unknown)."""

    problem: str
    kind: str
    n: int
    nll: dict
    train_s: dict
    truth: Summary | None


@dataclass(frozen=True)
class Margin:
    """Full covariances' log-likelihood minus diagonal's on the same points: its mean and
    spread over the seeds, and the paired standard error within a seed."""

    mean: float
    spread: float
    standard_error: float


@dataclass(frozen=True)
class CovarianceRow:
    """The default recipe with diagonal and with full covariances on one problem."""

    problem: str
    n: int
    truth: Summary | None
    nll: dict
    train_s: dict
    margin: Margin | None


def _steps(items, desc, progress):
    """items, with a tqdm progress bar on stderr when progress is True."""
    return tqdm(items, desc=desc, unit="fit", disable=not progress, file=sys.stderr)


def evaluate(recipes=("article", "tuned"), seeds=(0, 1, 2), n_held_out=N_HELD_OUT, progress=False):
    """One ``SineRow`` per recipe (``--json`` prints them as objects)."""
    bound = bayes_optimal_nll()
    rows = []
    jobs = _steps([(r, s) for r in recipes for s in seeds], "sine (recipe, seed)", progress)
    for recipe in recipes:
        train, held, secs = [], [], []
        for seed in seeds:
            jobs.set_postfix_str(f"recipe {recipe}, seed {seed}")
            n_train = TRAIN_SIZES.get(recipe, N_TRAIN)
            x_data, y_data = swap_axes(*make_sine_data(n_train, seed=seed))
            x_new, y_new = swap_axes(*make_sine_data(n_held_out, seed=HELD_OUT_SEED_OFFSET + seed))
            fitted = fit_mdn(x_data, y_data, recipe=recipe, seed=seed)
            train.append(fitted.nll(x_data, y_data))
            held.append(fitted.nll(x_new, y_new))
            secs.append(fitted.train_s)
            jobs.update()
        rows.append(
            SineRow(
                recipe=recipe,
                n_train=TRAIN_SIZES.get(recipe, N_TRAIN),
                train_nll=_summary(train),
                held_out_nll=_summary(held),
                bound=round(bound, 4),
                gap=_summary(np.array(held) - bound),
                train_s=_summary(secs),
            )
        )
    jobs.close()
    return rows


def _least_squares_angles(positions, angles, new_positions, seed):
    """Notebook 5's least-squares network (``build_mlp``, 20 tanh units, Adam 0.01, 3000
    full-batch epochs, standardized data): its predicted angles for new_positions."""
    (xm, xs), (ym, ys) = _mean_and_scale(positions), _mean_and_scale(angles)
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        tf1.set_random_seed(seed)
        mlp = build_mlp(LEAST_SQUARES_UNITS, LEAST_SQUARES_LEARNING_RATE, input_dim=2, output_dim=2)
        sess.run(tf1.global_variables_initializer())
        feed = {mlp.x: (positions - xm) / xs, mlp.y: (angles - ym) / ys}
        for _ in range(LEAST_SQUARES_EPOCHS):
            sess.run(mlp.train_step, feed)
        return sess.run(mlp.y_out, {mlp.x: (new_positions - xm) / xs}) * ys + ym


def evaluate_arm(seeds=(0, 1, 2), n_test=N_TRAIN, progress=False):
    """One ``ArmRow`` per model (least squares, Bishop's MDN as recipe "arm" (three networks
    averaged), the default recipe, which has full covariances for the two angles): RMS
    position error over the seeds, and Bishop's (None for the default, which he did not
    train)."""
    errors = {"least squares": [], "MDN": [], "MDN, default recipe": []}
    for seed in _steps(seeds, "arm (seed: least squares, MDN, default)", progress):
        angles, positions = make_arm_data(N_TRAIN, seed=seed)
        _, targets = make_arm_data(n_test, seed=HELD_OUT_SEED_OFFSET + seed)
        predicted = _least_squares_angles(positions, angles, targets, seed)
        errors["least squares"].append(arm_rms_error(predicted, targets))
        fitted = fit_mdn(positions, angles, recipe="arm", seed=seed)
        errors["MDN"].append(arm_rms_error(mixture_mode(*fitted.predict(targets)), targets))
        fitted = fit_mdn(positions, angles, seed=seed)
        errors["MDN, default recipe"].append(
            arm_rms_error(mixture_mode(*fitted.predict(targets)), targets)
        )
    return [
        ArmRow(model, _summary(rms), BISHOP_ARM_RMS.get(model)) for model, rms in errors.items()
    ]


def arm_to_markdown(rows):
    """The arm rows as a markdown table beside Bishop's."""
    lines = ["| model | RMS position error | Bishop 1994 |", "| --- | ---: | ---: |"]
    for row in rows:
        rms = row.rms
        bishop = "–" if row.bishop is None else f"{row.bishop:.4f}"
        lines.append(f"| {row.model} | {rms.mean:.4f} ± {rms.spread:.4f} | {bishop} |")
    return "\n".join(lines)


def to_markdown(rows):
    """The rows as a markdown table, mean ± spread."""

    lines = [
        "| recipe | training points | train NLL | held-out NLL | bound | gap | train s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        cells = [row.train_nll, row.held_out_nll, f"{row.bound:.3f}", row.gap, row.train_s]
        lines.append(f"| {row.recipe} | {row.n_train} | {' | '.join(map(str, cells))} |")
    return "\n".join(lines)


def evaluate_suite(models=MODELS, seeds=(0, 1, 2), problems=tuple(PROBLEMS), progress=False):
    """One ``SuiteRow`` per problem of ``mdn_tf.problems``: each model's held-out NLL (mean
    and spread over the seeds; None if it diverged on a seed), the truth's, and train
    seconds."""
    rows = []
    jobs = _steps(
        [(p, m, s) for p in problems for m in models for s in seeds], "suite (fit)", progress
    )
    for name in problems:
        problem = PROBLEMS[name]
        results, truths = {model: [] for model in models}, []
        for seed in seeds:
            splits = problem.splits(seed)  # the data and the truth's NLL, once per seed
            truths.append(pooled_truth(splits))
            for model in models:
                jobs.set_postfix_str(f"{name}, {model}, seed {seed}")
                results[model].append(score(problem, model_fit(model), seed, splits))
                jobs.update()
        nll = {model: _summary([r.nll for r in runs]) for model, runs in results.items()}
        train_s = {model: _summary([r.train_s for r in runs]) for model, runs in results.items()}
        rows.append(SuiteRow(name, problem.kind, problem.n, nll, train_s, _summary(truths)))
    jobs.close()
    return rows


COVARIANCE_PROBLEMS = ("noisy arm", "correlated")  # the suite's problems with D > 1


def evaluate_covariance(seeds=(0, 1, 2), problems=COVARIANCE_PROBLEMS, progress=False):
    """One ``CovarianceRow`` per problem: the default recipe's held-out NLL with diagonal
    and with full covariances (mean and spread over the seeds), the truth's, train
    seconds, and the margin, full's log-likelihood minus diagonal's on the same test
    points: its mean over the seeds, and its standard error within a seed (the points'
    paired differences' standard deviation / sqrt(number of points), averaged over the
    seeds)."""
    rows = []
    jobs = _steps([(p, s) for p in problems for s in seeds], "covariance (2 fits)", progress)
    for name in problems:
        problem = PROBLEMS[name]
        nlls, secs, truths = {"diagonal": [], "full": []}, {"diagonal": [], "full": []}, []
        margins, errors = [], []
        for seed in seeds:
            splits = problem.splits(seed)
            truths.append(pooled_truth(splits))
            results = {}
            for covariance in nlls:

                def fit(x, y, fit_seed, covariance=covariance):
                    recipe = replace(default_recipe(len(x), y.shape[1]), covariance=covariance)
                    return fit_mdn(x, y, recipe=recipe, seed=fit_seed)

                results[covariance] = score(problem, fit, seed, splits, log_probs=True)
                nlls[covariance].append(results[covariance].nll)
                secs[covariance].append(results[covariance].train_s)
            if all(r.nll is not None for r in results.values()):
                paired = results["full"].log_probs - results["diagonal"].log_probs
                margins.append(paired.mean())
                errors.append(paired.std(ddof=1) / np.sqrt(len(paired)))
            jobs.update()
        margin = None
        if len(margins) == len(seeds):
            summary = _summary(margins)
            standard_error = round(float(np.mean(errors)), 4)
            margin = Margin(summary.mean, summary.spread, standard_error)
        rows.append(
            CovarianceRow(
                problem=name,
                n=problem.n,
                truth=_summary(truths),
                nll={c: _summary(v) for c, v in nlls.items()},
                train_s={c: _summary(v) for c, v in secs.items()},
                margin=margin,
            )
        )
    jobs.close()
    return rows


def _nll_cells(nll):
    """Markdown cells of NLLs by model (``Summary`` or None: diverged), the best in bold."""
    scores = {model: value.mean for model, value in nll.items() if value is not None}
    best = min(scores, key=scores.get) if scores else None
    cells = ["diverged" if value is None else str(value) for value in nll.values()]
    return [f"**{cell}**" if model == best else cell for model, cell in zip(nll, cells)]


def _mean(summary, decimals):
    """A ``Summary``'s mean as a markdown cell; "–" for None."""
    return "–" if summary is None else f"{summary.mean:.{decimals}f}"


def covariance_to_markdown(rows):
    """The covariance rows as a markdown table (best in bold)."""
    lines = [
        "| problem | n | truth | default, diagonal | default, full | full better by (paired"
        " s.e.) | s per fit (diagonal, full) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        cells = _nll_cells(row.nll)
        margin = row.margin
        cells.append("–" if margin is None else f"{margin.mean:.3f} ({margin.standard_error:.3f})")
        secs = ", ".join(_mean(v, 1) for v in row.train_s.values())
        lines.append(
            f"| {row.problem} | {row.n} | {_mean(row.truth, 3)} | {' | '.join(cells)} | {secs} |"
        )
    return "\n".join(lines)


def suite_to_markdown(rows):
    """The suite's rows as a markdown table: held-out NLL per model, mean ± spread, best in
    bold; "diverged" where training stopped with TrainingDiverged."""
    models = list(rows[0].nll)
    head = " | ".join("k-NN Gaussian" if m == "knn" else f"`{m}`" for m in models)
    lines = [
        f"| problem | kind | n | truth | {head} | `{models[-1]}`, s per fit |",
        "| --- | --- | ---: | ---: |" + " ---: |" * (len(models) + 1),
    ]
    for row in rows:
        cells = " | ".join(_nll_cells(row.nll))
        secs = _mean(row.train_s[models[-1]], 1)
        lines.append(
            f"| {row.problem} | {row.kind} | {row.n} | {_mean(row.truth, 3)} | {cells} | {secs} |"
        )
    return "\n".join(lines)


EPILOG = """\
what runs: with no option, all four parts, in this order; naming only --recipes runs only
the sine rows (add --problems to say otherwise). docs/evaluation.md says how long each
part takes, and on which machine.
"""


def _parser():
    """The command line of ``python -m mdn_tf.evaluate``."""
    parser = argparse.ArgumentParser(
        prog="python -m mdn_tf.evaluate",
        description=__doc__.split("\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object instead of markdown tables: keys 'sine', 'arm', 'suite' "
        "and 'covariance' (those that ran), each a list of rows (per recipe, per model, per "
        "problem) with means and spreads over the seeds",
    )
    seed = _checks.cli_int(_checks.non_negative_int, "seed")
    parser.add_argument(
        "--seeds",
        type=seed,
        nargs="+",
        default=[0, 1, 2],
        help="data seeds for the sine and arm parts (default: 0 1 2)",
    )
    parser.add_argument(
        "--recipes",
        nargs="+",
        default=None,
        choices=SINE_RECIPES,
        help="recipes scored on the sine problem (default: "
        f"{' '.join(SINE_RECIPES)}); naming them alone runs only the sine part",
    )
    parser.add_argument(
        "--problems",
        nargs="+",
        default=None,
        choices=list(PARTS),
        help="which parts to run: 'sine' (recipes against the bound), 'arm' (Bishop's "
        "robot arm), 'suite' (11 problems, 4 models), 'covariance' (the default recipe "
        "with diagonal and full covariances on the problems with two outputs) (default: "
        "all four, or only sine when --recipes is given)",
    )
    parser.add_argument(
        "--suite-seeds",
        type=seed,
        nargs="+",
        default=[0, 1, 2],
        help="seeds for the suite part (default: 0 1 2)",
    )
    parser.add_argument(
        "--n-held-out",
        type=_checks.cli_int(_checks.positive_int, "n_held_out"),
        default=N_HELD_OUT,
        help=f"fresh points per seed for the sine part's held-out NLL (default: {N_HELD_OUT})",
    )
    return parser


class _Part(NamedTuple):
    """A part of the evaluation: ``run(args)`` gives its rows from the parsed command line,
    ``table(rows)`` their markdown."""

    run: Callable
    table: Callable


# the parts in the order they run and print
PARTS = {
    "sine": _Part(
        lambda args: evaluate(args.recipes, args.seeds, args.n_held_out, progress=True),
        to_markdown,
    ),
    "arm": _Part(lambda args: evaluate_arm(args.seeds, progress=True), arm_to_markdown),
    "suite": _Part(
        lambda args: evaluate_suite(seeds=args.suite_seeds, progress=True), suite_to_markdown
    ),
    "covariance": _Part(
        lambda args: evaluate_covariance(args.suite_seeds, progress=True), covariance_to_markdown
    ),
}


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.problems is None:  # --recipes alone: the sine rows only
        args.problems = ["sine"] if args.recipes is not None else list(PARTS)
    args.recipes = list(SINE_RECIPES) if args.recipes is None else args.recipes
    result = {name: part.run(args) for name, part in PARTS.items() if name in args.problems}
    if args.json:
        rows = {name: [asdict(row) for row in part_rows] for name, part_rows in result.items()}
        print(json.dumps(rows, indent=2))
    else:
        print("\n\n".join(PARTS[name].table(part_rows) for name, part_rows in result.items()))


if __name__ == "__main__":
    sys.exit(main())
