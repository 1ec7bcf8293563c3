"""Train an MDN end to end with a recipe (``mdn_tf.recipes``): ``fit_mdn``.

Every named recipe but the article's, ``"article"``, trains all its members in one compiled
program (``mdn_tf.stacked``); ``Recipe(engine="graph")``, the article's recipe among them,
trains each member on its own TF1 graph loop (``mdn_tf.engine.graph_loop``), one network
per thread, bit-identical to the article's ``sess.run(train_step)`` loop.
"""

import os
import queue
import time
import warnings
from contextlib import closing, contextmanager
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp
from tqdm.auto import tqdm

from mdn_tf import _checks, stacked
from mdn_tf._tf import side_by_side, tf, tf1
from mdn_tf.data import discrete_columns
from mdn_tf.engine import graph_loop
from mdn_tf.graph import network_graph
from mdn_tf.mixture import mixture_log_likelihood
from mdn_tf.model import FittedMDN, member_mixtures, scale_sigmas
from mdn_tf.recipes import RECIPES, Recipe, default_recipe


class TrainingDiverged(FloatingPointError):
    """A training loss became NaN or infinite; fit_mdn stops instead of returning NaNs."""


class DiscreteTargetWarning(UserWarning):
    """The targets take few distinct values: a mixture density can put spikes on them."""


def warn_if_discrete(y_data):
    """Warn (``DiscreteTargetWarning``) for each column of y_data (n, D) that
    ``discrete_columns`` calls discrete: ratings, counts, coarsely rounded readings.

    A density fitted to such a target can put narrow components on the values, and its
    NLL then grows without bound below as they narrow: it measures spikes, not a better
    model, and is not comparable with a Gaussian's (docs/faq.md says what to do).
    """
    for column, count, step in discrete_columns(y_data):
        grid = "" if step is None else f" on a grid of step {step:.6g}"
        warnings.warn(
            f"fit_mdn: y_data column {column} takes {count} distinct "
            f"value{'s' if count > 1 else ''}{grid} over {len(y_data)} rows: a mixture "
            "density can put a narrow component on each value, so its NLL measures those "
            "spikes (unbounded below) and is not comparable with a continuous model's; "
            "dequantize (add uniform noise of one step), use a discrete likelihood, or read "
            "the NLL as a density on spikes (docs/faq.md)",
            DiscreteTargetWarning,
            stacklevel=3,
        )


def oob_sigma_scale(mixtures, held_out, y):
    """The factor c on every sigma that best predicts the points the members held out.

    Each training point i is scored by the members that did not train on it (its
    out-of-bag ensemble, their mixtures averaged), and c maximises the mean of

        log( mean_{m : held_out[m, i]} sum_k p_mik N(y_i; mu_mik, c sigma_mik) )

    over the points held out by at least one member (Brent's method on [0.25, 4]).

    Args:
        mixtures: one (p_val, mu_val, sigma_val) per member on all n points: weights
            (n, K), means and sigmas (n, K) or (n, K, D).
        held_out: (members, n) bool, True where the member did not train on the point.
        y: (n, D) targets.

    Returns:
        float c > 0.
    """
    held_out = np.asarray(held_out, dtype=bool)
    if held_out.shape != (len(mixtures), len(y)):
        raise ValueError(
            f"held_out must have shape (members, n) = {(len(mixtures), len(y))}, "
            f"got {held_out.shape}"
        )
    scored = held_out.any(axis=0)
    if not scored.any():
        raise ValueError("held_out marks no point: nothing to calibrate on")
    counts = held_out[:, scored].sum(axis=0)

    def nll(log_c):
        c = np.exp(log_c)
        ll = np.stack([mixture_log_likelihood(p, mu, c * s, y) for p, mu, s in mixtures])
        ll = np.where(held_out, ll, -np.inf)[:, scored]  # (members, scored points)
        return -np.mean(logsumexp(ll, axis=0) - np.log(counts))

    result = minimize_scalar(nll, bounds=(np.log(0.25), np.log(4.0)), method="bounded")
    return float(np.exp(result.x))


@dataclass
class _GraphNetwork:
    """One network of the graph path: its MDN, graph loop, the ops that write its weights,
    its session, and ``reset``, which puts the loop's Adam state back to new."""

    mdn: object
    loop: tuple  # graph_loop's (xs, ys, losses)
    weights: list
    saved: list
    restore: object
    sess: object
    reset: object


def _build_network(network, seed):
    """A network in a graph of its own, seeded as a notebook seeds it
    (``set_random_seed(seed)``), with its graph loop and its session initialised."""
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(seed)
        mdn = network_graph(network)
        built = set(tf1.global_variables())
        loop = graph_loop(mdn)
        adam = tf1.variables_initializer([v for v in tf1.global_variables() if v not in built])
        weights = [w for layer in mdn.layers for w in layer]
        # to load weights: one placeholder and assign op per weight
        saved = [tf1.placeholder(w.dtype.base_dtype, w.shape) for w in weights]
        restore = tf.group(*[w.assign(v) for w, v in zip(weights, saved)])
        sess = tf1.Session()
        sess.run(tf1.global_variables_initializer())
    return _GraphNetwork(mdn, loop, weights, saved, restore, sess, lambda: sess.run(adam))


class _Trainers:
    """The graph-path networks that train an ensemble's members, one per thread: each
    member's initial weights are loaded into a free one and trained there. So each
    thread builds the loop once per fit instead of once per member. A
    member's result does not depend on which trainer ran it: each start resets Adam's
    moments and beta powers, and every trainer runs the same ops."""

    def __init__(self, network, count):
        self._free = queue.SimpleQueue()
        self._all = [_build_network(network, 0) for _ in range(count)]
        for trainer in self._all:
            self._free.put(trainer)

    @contextmanager
    def start(self, weights):
        """A trainer holding ``weights``, its Adam state new; back to the pool after."""
        trainer = self._free.get()
        try:
            trainer.sess.run(trainer.restore, dict(zip(trainer.saved, weights)))
            trainer.reset()
            yield trainer
        finally:
            self._free.put(trainer)

    def close(self):
        for trainer in self._all:
            trainer.sess.close()


def _train_graph(member, trainer, recipe, monitor, nll_shift, bar):
    """Train one member on the graph loop of ``trainer`` (holding its initial weights),
    ``recipe.check_every`` epochs per ``Session.run``, each followed by its checks
    (``stacked.early_stopping``); fills in the member's weights, losses, validation
    history and best epoch, and returns its monitor history."""
    mdn, sess = trainer.mdn, trainer.sess
    xs, ys, loop_losses = trainer.loop
    stream = stacked.BatchStream.of(member, recipe)
    mon, best_val, since, best = [], np.inf, 0, (recipe.epochs, None)  # best: (epoch, weights)

    def exact_nll(x, y):  # in the data's units: + log of the scaling's Jacobian
        return float(sess.run(mdn.nll, {mdn.x: x, mdn.y: y})) + nll_shift

    for done in range(0, recipe.epochs, recipe.check_every):
        steps = min(recipe.check_every, recipe.epochs - done)
        x_steps, y_steps = stream.take(steps)
        step_losses = sess.run(loop_losses, {xs: x_steps, ys: y_steps})
        chunk_losses = step_losses.reshape(steps, -1).mean(axis=1)
        if not np.all(np.isfinite(chunk_losses)):
            _diverged(recipe, member.name, done, chunk_losses, member.x_tr, member.y_tr)
        member.losses.extend(chunk_losses.tolist())
        if bar is not None:
            bar.update(steps)
        if steps < recipe.check_every:  # the epochs left after the last check
            break
        if monitor is not None:
            mon.append((done + steps, exact_nll(*monitor)))
        if member.x_va is not None:
            member.val.append((done + steps, exact_nll(member.x_va, member.y_va)))
            check = stacked.early_stopping(
                member.val[-1][1], best_val, since, recipe.patience, np.where
            )
            best_val, since = check.best_val, check.since
            if check.gain:
                best = (done + steps, sess.run(trainer.weights))
            if check.stop:
                break
    if bar is not None:  # a member that stopped early still completes its share of the bar
        bar.update(recipe.epochs - len(member.losses))
    member.best_epoch, member.weights = best[0], best[1]
    if member.weights is None:  # no check: the last weights
        member.best_epoch, member.weights = len(member.losses), sess.run(trainer.weights)
    return np.array(mon)


def _fit_graph(members, recipe, network, monitor, nll_shift, bar):
    """The graph path: each member on a TF1 graph loop, one Python thread per core;
    returns the members' monitor histories."""
    if len(members) == 1:  # one network: it trains in a graph of its own, seeded by its seed
        trainer = _build_network(network, members[0].seed)
        with closing(trainer.sess):
            return [_train_graph(members[0], trainer, recipe, monitor, nll_shift, bar)]
    threads = min(len(members), os.cpu_count() or 1)
    trainers = _Trainers(network, threads)

    def train(member, stopping):  # a member runs to its end once started
        with trainers.start(member.weights) as trainer:
            return _train_graph(member, trainer, recipe, monitor, nll_shift, bar)

    with closing(trainers):
        return side_by_side(train, members, threads)


def _fit_stacked(members, recipe, network, monitor, nll_shift, bar):
    """The stacked path: every member in one compiled program (``mdn_tf.stacked``);
    returns the members' monitor histories, scored on their kept weights."""
    stacked.train_members(
        network,
        members,
        recipe,
        nll_shift=nll_shift,
        monitor=monitor,
        on_epochs=None if bar is None else bar.update,
    )
    if bar is not None:  # members that stopped early still complete their share of the bar
        bar.update(recipe.epochs * len(members) - bar.n)
    _report_divergences(members, recipe)
    return [np.array(m.monitor) for m in members]


def _report_divergences(members, recipe):
    """Warn of every member whose loss stopped being finite, saying what became of it, and
    raise TrainingDiverged when no member is left."""
    for m in members:
        if not m.divergences:
            continue
        events = "; ".join(
            f"{loss} at epoch {e} (learning rate {lr:.3g})" for e, loss, lr in m.divergences
        )
        if m.dropped:
            fate = "it is left out of the ensemble, having no checked weights to fall back on"
        elif len(m.divergences) > stacked.RESTARTS:
            fate = f"it keeps the weights of its best check (epoch {m.best_epoch})"
        else:
            fate = "it went on from its best check with half the learning rate, and finished"
        warnings.warn(
            f"fit_mdn: {m.name}: the training loss became {events}; {fate}",
            RuntimeWarning,
            stacklevel=4,
        )
    if all(m.dropped for m in members):
        epoch, loss, _ = members[0].divergences[0]
        _diverged(
            recipe, members[0].name, epoch - 1, np.array([loss]), members[0].x_tr, members[0].y_tr
        )


def _diverged(recipe, name, done, chunk, x_tr, y_tr):
    """Raise TrainingDiverged for the first non-finite loss of a chunk of epochs."""
    bad = int(np.argmin(np.isfinite(chunk)))
    if recipe.standardize:
        cause = (
            "the data are standardized, so the learning rate is the likely cause: "
            f"try a smaller learning_rate than {recipe.learning_rate}"
        )
    else:
        spans = ", ".join(
            f"{label} spans [{a.min():.3g}, {a.max():.3g}]"
            for label, a in (("x", x_tr), ("y", y_tr))
        )
        cause = (
            f"{spans} in the units the network trains on; data far from mean 0 and scale 1 "
            "overflow the softmax and exp of the head: use Recipe(standardize=True) or a "
            "smaller learning_rate"
        )
    raise TrainingDiverged(
        f"{name}: the training loss became {chunk[bad]} at epoch {done + bad + 1} of "
        f"{recipe.epochs}; {cause}"
    )


def _validation_size(recipe, n):
    """Points each member holds out: round(validation_fraction * n), at least 1 if any.

    Raises ValueError when a member would be left with no training or no validation point.
    """
    if recipe.validation_fraction == 0:
        return 0
    n_val = max(1, int(round(recipe.validation_fraction * n)))
    if n_val >= n:
        raise ValueError(
            f"validation_fraction={recipe.validation_fraction} of {n} training point(s) "
            f"holds out {n_val}, leaving each member {n - n_val} to train on: "
            "give more points or a smaller validation_fraction"
        )
    return n_val


def fit_mdn(x_data, y_data, recipe="default", seed=None, monitor=None, progress=False):
    """Train an MDN on (x_data, y_data) with a named recipe; each call builds its own graphs.

    Args:
        x_data, y_data: (n, input_dim) training inputs and (n, D) targets (finite); (n,) is
            read as one column; numpy arrays, lists, pandas DataFrames or Series (read by
            position).
        recipe: a name from ``RECIPES`` or a ``Recipe``:

            - "default": for data of your own, at any scale (standardized data, noise in
              standard deviations, early stopping, an ensemble of 5, calibrated sigmas,
              minibatches of 1000 above 1000 points, checks and noise adapted to n by
              ``default_recipe(n, D)``, full covariances for D > 1); chosen on problems
              of several kinds, real data included (docs/evaluation.md);
            - "article": the article exactly, on the graph loop (with ``seed=SEED`` it
              retraces notebook 3 bit for bit);
            - "tuned": what held-out NLL rewarded on the article's problem in its units
              (noise, decay, early stopping, an ensemble of 8, calibrated sigmas);
            - "large": minibatches of 1000 for 10^4 points and more, one network;
            - "arm": Bishop's robot arm (2 components, 20 tanh units, standardized data).
        seed: int or None; fixes the weight initialisation, splits and member seeds. With
            one member it is that network's graph seed (``tf.compat.v1.set_random_seed``).
        monitor: optional (x, y) pair whose exact NLL is recorded every ``check_every`` epochs.
        progress: show a progress bar (tqdm: a widget in Jupyter, a line on stderr in a
            terminal) over all members' epochs; members that stop early end short of it.

    Returns:
        FittedMDN.
    """
    recipe, x_data, y_data, monitor = _checked_call(x_data, y_data, recipe, monitor)
    seed = _checks.optional_seed("seed", seed)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    n_val = _validation_size(recipe, len(x_data))
    warn_if_discrete(y_data)
    scaling = _Scaling.of(x_data, y_data) if recipe.standardize else _Scaling.none(x_data, y_data)
    x_data, y_data = scaling.x(x_data), scaling.y(y_data)
    if monitor is not None:
        monitor = (scaling.x(monitor[0]), scaling.y(monitor[1]))
    network = recipe.network(x_data.shape[1], y_data.shape[1])
    members, held_out = _members(network, recipe, seed, x_data, y_data, n_val)
    start = time.perf_counter()
    fit = _fit_stacked if recipe.engine == "stacked" else _fit_graph
    total = recipe.epochs * recipe.ensemble
    with tqdm(total=total, desc="fit_mdn", unit="epoch", disable=not progress) as bar:
        mons = fit(members, recipe, network, monitor, scaling.nll_shift, bar if progress else None)
    kept = [i for i, m in enumerate(members) if not m.dropped]  # the dropped were warned of
    members, held_out, mons = [members[i] for i in kept], held_out[kept], [mons[i] for i in kept]
    weights, sigma_scale = [m.weights for m in members], 1.0
    if recipe.calibrate_sigma:
        weights, sigma_scale = _calibrate(weights, network, held_out, x_data, y_data, recipe)
    losses = [np.array(m.losses) for m in members]
    shortest = min(len(loss) for loss in losses)
    return FittedMDN(
        recipe=recipe,
        weights=weights,
        network=network,
        loss_history=np.mean([loss[:shortest] for loss in losses], axis=0),
        val_history=[np.array(m.val) for m in members],
        monitor_history=mons[0] if len(mons) == 1 else np.array(mons, dtype=object),
        best_epochs=[m.best_epoch for m in members],
        stages=[m.stages for m in members],
        sigma_scale=sigma_scale,
        train_s=time.perf_counter() - start,
        _scaling=scaling.saved,
    )


def _checked_call(x_data, y_data, recipe, monitor):
    """fit_mdn's recipe (a ``Recipe``; "default" adapted to n and D), data as float64
    matrices (n, input_dim) and (n, D), and monitor pair, checked: ValueError or TypeError
    naming the argument."""
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {recipe!r}")
    elif not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a recipe name or a Recipe, got {recipe!r}")
    x_data = _checks.matrix("x_data", x_data)
    y_data = _checks.matrix("y_data", y_data)
    _checks.same_length(x_data=x_data, y_data=y_data)
    if recipe == "default":
        recipe = default_recipe(len(x_data), y_data.shape[1])
    elif isinstance(recipe, str):
        recipe = RECIPES[recipe]
    if monitor is not None:
        if not isinstance(monitor, (tuple, list)) or len(monitor) != 2:
            raise TypeError(
                f"monitor must be an (x, y) pair of arrays, got {type(monitor).__name__}"
            )
        mx = _checks.matrix("monitor[0]", monitor[0], width=x_data.shape[1])
        my = _checks.matrix("monitor[1]", monitor[1], width=y_data.shape[1])
        _checks.same_length(**{"monitor[0]": mx, "monitor[1]": my})
        monitor = (mx.astype(np.float32), my.astype(np.float32))
    return recipe, x_data, y_data, monitor


@dataclass(frozen=True)
class _Scaling:
    """How the network's units relate to the data's: x' = (x - x_shift) / x_scale and
    y' = (y - y_shift) / y_scale per column (shift 0, scale 1 when not standardized);
    ``nll_shift`` = sum_d log y_scale_d turns an NLL in y' into one in y."""

    x_shift: np.ndarray
    x_scale: np.ndarray
    y_shift: np.ndarray
    y_scale: np.ndarray
    standardized: bool

    @classmethod
    def of(cls, x, y):
        """Each column to mean 0 and standard deviation 1 (a constant column keeps scale 1)."""
        (x_shift, x_scale), (y_shift, y_scale) = _mean_and_scale(x), _mean_and_scale(y)
        return cls(x_shift, x_scale, y_shift, y_scale, True)

    @classmethod
    def none(cls, x, y):
        """The data's own units."""
        return cls(0.0, 1.0, 0.0, 1.0, False)

    def x(self, x):
        """x (n, input_dim) in the network's units, float32."""
        return ((x - self.x_shift) / self.x_scale).astype(np.float32)

    def y(self, y):
        """y (n, D) in the network's units, float32."""
        return ((y - self.y_shift) / self.y_scale).astype(np.float32)

    @property
    def nll_shift(self):
        return float(np.sum(np.log(self.y_scale))) if self.standardized else 0.0

    @property
    def saved(self):
        """What ``FittedMDN`` keeps: (x_shift, x_scale, y_shift, y_scale), or None."""
        if not self.standardized:
            return None
        return self.x_shift, self.x_scale, self.y_shift, self.y_scale


def _members(network, recipe, seed, x_data, y_data, n_val):
    """The members to train, each with its seed, split and initial weights (build_mdn's
    under ``set_random_seed(its seed)``), and held_out (members, n), True where a member
    holds the point out. Every seed and split is drawn first, in member order, so that
    results do not depend on scheduling."""
    rng = np.random.default_rng(seed)
    held_out = np.zeros((recipe.ensemble, len(x_data)), dtype=bool)
    members = []
    for i in range(recipe.ensemble):
        member_seed = int(rng.integers(2**31 - 1))
        if recipe.ensemble == 1 and seed is not None:
            # one network: seed is its graph seed, as set_random_seed(SEED) in a notebook,
            # so fit_mdn(x, y, recipe="article", seed=SEED) retraces notebook 3 bit for bit
            member_seed = seed
        x_tr, y_tr, x_va, y_va = x_data, y_data, None, None
        if recipe.validation_fraction > 0:
            order = rng.permutation(len(x_data))
            va, tr = order[:n_val], order[n_val:]
            held_out[i, va] = True
            x_tr, y_tr, x_va, y_va = x_data[tr], y_data[tr], x_data[va], y_data[va]
        name = f"member {i + 1} of {recipe.ensemble}"
        members.append(stacked.Member(None, x_tr, y_tr, x_va, y_va, member_seed, name))
    initial = stacked.initial_weights(network, [m.seed for m in members])
    for i, member in enumerate(members):
        member.weights = [w[i] for w in initial]
    return members, held_out


def _calibrate(weights, network, held_out, x, y, recipe):
    """(weights, sigma factor) of calibrated members: with ``calibrated_checks`` each
    member's sigmas first times the factor that fits its own held-out points best (folded
    into its out layer), then one factor for the ensemble out of bag (``oob_sigma_scale``).
    """
    p, mu, sigma = member_mixtures(weights, network, x)
    mixtures = [(p[i], mu[i], sigma[i]) for i in range(len(weights))]
    if recipe.calibrated_checks:
        factors = [oob_sigma_scale([mix], out[None], y) for mix, out in zip(mixtures, held_out)]
        weights = [scale_sigmas(w, network, c) for w, c in zip(weights, factors)]
        mixtures = [(p, mu, c * s) for (p, mu, s), c in zip(mixtures, factors)]
    return weights, oob_sigma_scale(mixtures, held_out, y)


def _mean_and_scale(a):
    """Column means and standard deviations of a (n, d); a constant column keeps scale 1."""
    scale = a.std(axis=0)
    return a.mean(axis=0), np.where(scale > 0, scale, 1.0)
