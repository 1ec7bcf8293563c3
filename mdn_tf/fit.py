"""Train an MDN end to end: the article's recipe, and a tuned one that generalises better."""

import os
import queue
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp
from tqdm.auto import tqdm

from mdn_tf import _checks
from mdn_tf._tf import static_shape, tf, tf1
from mdn_tf.engine import Engine, graph_loop
from mdn_tf.graph import build_mdn, resolve_activation
from mdn_tf.mixture import (
    held_out_nll,
    mixture_cdf,
    mixture_log_likelihood,
    mixture_mode,
    mixture_moments,
    mixture_quantile,
    sample_from_mixture,
)

ENGINES = ("xla", "graph")
QUIET_EPOCHS = 250  # the XLA engine's epochs per call when nothing is checked between


@dataclass(frozen=True)
class Recipe:
    """How to train: network, loss, optimiser, epochs, early stopping and ensembling.

    With ``validation_fraction`` > 0 each member holds that share of the training points
    out (a different random split per member), checks its exact NLL on them every
    ``check_every`` epochs, stops after ``patience`` checks without improvement, and keeps
    the weights of its best check. ``ensemble`` members are averaged as one mixture.
    ``input_noise`` and ``target_noise`` > 0 add fresh Gaussian noise of that standard
    deviation to the training x and y at every epoch (noise regularisation, which smooths
    the learned density; Rothfuss et al. 2019). Noise on x also widens what the network
    learns: it fits y given a noisier x. ``calibrate_sigma`` undoes that with one factor on
    every sigma, fitted to the points the members held out (``oob_sigma_scale``).
    ``standardize`` trains on x and y shifted and scaled to mean 0 and standard deviation 1
    per column (statistics of the training data), and ``predict`` maps the mixture back:
    what data far from (0, 1), such as the robot arm's angles around pi, needs; noise levels
    are then in standard deviations, and the training loss in the scaled units.
    ``engine`` is how the epochs run: "graph" (``graph_loop``: ordinary TF1 ops,
    bit-identical to the article's ``sess.run(train_step)`` loop) or "xla"
    (``mdn_tf.engine.Engine``, compiled; the faster for long runs without checks).
    ``batch_size`` None trains on the full batch each epoch; an int B makes an epoch one
    pass over the shuffled training points in n // B minibatches of B (the n % B left over
    sit that epoch out; a fresh shuffle each epoch), and the epoch's loss the mean of its
    steps'.
    """

    mixture_size: int = 12
    hidden_units: tuple = (64, 128)
    activation: str = "relu"
    learning_rate: float = 0.01
    epochs: int = 2500
    stable_loss: bool = False
    weight_decay: float = 0.0
    validation_fraction: float = 0.0
    check_every: int = 10
    patience: int = 30
    ensemble: int = 1
    input_noise: float = 0.0
    target_noise: float = 0.0
    calibrate_sigma: bool = False
    standardize: bool = False
    engine: str = "graph"
    batch_size: int = None

    def __post_init__(self):
        for name in ("mixture_size", "epochs", "check_every", "patience", "ensemble"):
            _checks.positive_int(name, getattr(self, name))
        _checks.unit_sequence("hidden_units", self.hidden_units)
        resolve_activation(self.activation)  # a misspelt name fails here, not in fit_mdn
        _checks.positive_float("learning_rate", self.learning_rate)
        for name in ("weight_decay", "input_noise", "target_noise"):
            _checks.non_negative_float(name, getattr(self, name))
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}"
            )
        for name in ("calibrate_sigma", "standardize"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.batch_size is not None:
            _checks.positive_int("batch_size", self.batch_size)
            if self.engine != "graph":
                raise ValueError(
                    f"batch_size={self.batch_size} needs engine='graph' (the XLA engine "
                    "trains on full batches), got engine={self.engine!r}"
                )
        if self.calibrate_sigma and self.validation_fraction == 0:
            raise ValueError("calibrate_sigma needs held-out points: set validation_fraction > 0")


RECIPES = {
    # fit_mdn(x, y) with no recipe named: for data of any scale and kind (see README
    # "A default for your own data"): standardized data, noise regularisation in standard
    # deviations, the stable loss, early stopping on a 20% split, an ensemble of 5
    # members on different splits, sigmas calibrated out of bag, and minibatches of 1000
    # once there are more points than that
    "default": Recipe(
        stable_loss=True,
        learning_rate=0.005,
        epochs=2000,
        weight_decay=1e-4,
        validation_fraction=0.2,
        patience=30,
        ensemble=5,
        input_noise=0.05,
        target_noise=0.05,
        calibrate_sigma=True,
        standardize=True,
        batch_size=1000,
    ),
    # the article exactly: 12 components, 64/128 relu, clamped NLL, Adam 0.01, 2500 epochs,
    # on the (default) graph loop, so that fit_mdn(recipe="seed", seed=SEED) retraces
    # notebook 3 bit for bit
    "seed": Recipe(),
    # what held-out NLL rewarded on this problem (see README "Evaluation"): the stable loss,
    # noise regularisation, light weight decay, early stopping on a 20% split, an
    # ensemble of 8 members on different splits, and sigmas calibrated out of bag
    "tuned": Recipe(
        stable_loss=True,
        learning_rate=0.005,
        epochs=2000,
        weight_decay=1e-4,
        validation_fraction=0.2,
        patience=30,
        ensemble=8,
        input_noise=0.4,
        target_noise=0.1,
        calibrate_sigma=True,
    ),
    # many points (10^4 and up): minibatches of 1000 (an epoch is one pass), the stable
    # loss, early stopping on a 5% split checked every pass; on 100 000 points of the
    # article's problem it comes within 0.02 nats of the bound in about 15 s
    "large": Recipe(
        stable_loss=True,
        learning_rate=0.003,
        epochs=300,
        batch_size=1000,
        validation_fraction=0.05,
        check_every=1,
        patience=30,
    ),
    # Bishop's robot arm (notebook 5): his MDN of 2 kernels and 10 tanh units trained with
    # BFGS; here 2 components, 20 tanh units, full-batch Adam on standardized data
    "arm": Recipe(
        mixture_size=2,
        hidden_units=(20,),
        activation="tanh",
        learning_rate=0.01,
        epochs=5000,
        stable_loss=True,
        standardize=True,
    ),
}


def default_recipe(n):
    """The default recipe for n training points: ``RECIPES["default"]`` up to 1000 points;
    above, a validation check every max(1, round(10 000 / n)) epochs (an epoch is then
    several minibatches, and patience counts checks) and noise on x and y shrunk as
    0.05 (1000 / n)^(1/5), the rate of a kernel density's bandwidth: with more points
    there is less to smooth. On 100 000 points of the article's problem that took fitting
    from 243 s to about 30 s, and the held-out NLL from 1.334 to 1.317."""
    n = _checks.positive_int("n", n)
    base = RECIPES["default"]
    if n <= 1000:
        return base
    noise = base.input_noise * (1000 / n) ** 0.2
    return replace(
        base,
        check_every=max(1, round(10_000 / n)),
        input_noise=noise,
        target_noise=noise,
    )


@dataclass
class FittedMDN:
    """A trained MDN (or ensemble of MDNs) and how its training went.

    ``predict(x)`` gives the mixture for inputs x (n, input_dim) as numpy
    (p_val, mu_val, sigma_val): weights (n, K * ensemble), means and sigmas (n, K * ensemble)
    for one output dimension or (n, K * ensemble, D). ``loss_history`` is the training loss
    per epoch (mean over members, over the epochs all members ran); ``val_history`` the
    members' validation NLL per check; ``monitor_history`` (epoch, exact NLL) pairs on the
    ``monitor`` data; ``best_epochs`` the epoch each member's weights come from;
    ``sigma_scale`` the factor ``predict`` applies to every sigma (1 unless the recipe
    calibrates); ``train_s`` seconds. Validation and monitor NLLs are in the data's units,
    also when the recipe standardizes.
    """

    recipe: Recipe
    _members: list = field(repr=False)
    loss_history: np.ndarray = field(repr=False)
    val_history: list = field(repr=False)
    monitor_history: np.ndarray = field(repr=False)
    best_epochs: list = field(default_factory=list)
    sigma_scale: float = 1.0
    train_s: float = 0.0
    _scaling: tuple = field(default=None, repr=False)  # (x_shift, x_scale, y_shift, y_scale)

    def close(self):
        """Release the members' TensorFlow sessions."""
        for sess, _ in self._members:
            sess.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def save(self, path, overwrite=False):
        """Write the model to the folder ``path`` (JSON and .npz, no pickle; see
        ``mdn_tf.saving``); ``mdn_tf.load_mdn(path)`` reads it back. Returns the path."""
        from mdn_tf import saving  # saving builds on this module

        return saving.save(self, path, overwrite=overwrite)

    # questions about p(y | x), with x and y in the data's units (shapes as the numpy
    # functions of mdn_tf.mixture take them)

    def log_prob(self, x, y):
        """log p(y | x) per row: x (n, input_dim), y (n, D) -> (n,)."""
        return mixture_log_likelihood(*self.predict(x), y)

    def nll(self, x, y):
        """Mean negative log-likelihood of y given x: -mean(log_prob(x, y)), a float."""
        return held_out_nll(*self.predict(x), y)

    def sample(self, x, samples_per_x=1, temperature=1.0, sigma_temperature=1.0, rng=None):
        """Draws from p(y | x): (n, samples_per_x) for D = 1, (n, samples_per_x, D) else;
        the temperatures as ``sample_from_mixture``'s."""
        return sample_from_mixture(
            *self.predict(x),
            samples_per_x=samples_per_x,
            rng=rng,
            temperature=temperature,
            sigma_temperature=sigma_temperature,
        )

    def mode(self, x):
        """The most probable y at each x (``mixture_mode``): (n, D)."""
        return mixture_mode(*self.predict(x))

    def mean(self, x):
        """E[y | x], the mixture's own mean: (n, D)."""
        return mixture_moments(*self.predict(x))[0]

    def std(self, x):
        """The standard deviation of y given x, per output dimension: (n, D)."""
        return mixture_moments(*self.predict(x))[1]

    def cdf(self, x, y):
        """P(Y <= y | x) for one output dimension: (n,)."""
        return mixture_cdf(*self.predict(x), y)

    def quantile(self, x, q):
        """The q-quantiles of y given x for one output dimension: (n, len(q))."""
        return mixture_quantile(*self.predict(x), q)

    def predict(self, x):
        """Mixture parameters at inputs x (n, input_dim), or (n,) for one input: float64
        arrays p (n, K), mu and sigma (n, K) for D = 1 or (n, K, D).

        sigma is exp(log_sigma) taken in float64: far from the data a float32 ``exp`` can
        round a sigma to 0, a density no question could be asked of."""
        width = static_shape(self._members[0][1].x)[1]
        x = _checks.matrix("x", x, width=width)
        if self._scaling is not None:
            x = (x - self._scaling[0]) / self._scaling[1]
        x = x.astype(np.float32)
        parts = [_member_mixture(sess, mdn, x) for sess, mdn in self._members]
        m = len(parts)
        p_val = np.concatenate([p for p, _, _ in parts], axis=1) / m
        mu_val = np.concatenate([mu for _, mu, _ in parts], axis=1)
        sigma_val = np.concatenate([s for _, _, s in parts], axis=1) * self.sigma_scale
        if self._scaling is not None:  # back to the data's units
            y_shift, y_scale = self._scaling[2:]
            mu_val, sigma_val = mu_val * y_scale + y_shift, sigma_val * y_scale
        return p_val, mu_val, sigma_val


def _member_mixture(sess, mdn, x):
    """One network's mixture at x (float32, in its training units) as float64 arrays, with
    sigma = exp(log_sigma) taken in float64 (no underflow to 0)."""
    p_val, mu_val, log_sigma = sess.run([mdn.p_out, mdn.mu_out, mdn.log_sigma], {mdn.x: x})
    return p_val.astype(np.float64), mu_val.astype(np.float64), np.exp(log_sigma.astype(np.float64))


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
class _Member:
    """One network of a fit: its MDN, how its epochs run, the ops that put a checkpoint of
    its weights back, and its session."""

    mdn: object
    runner: object  # an Engine, graph_loop's (xs, ys, losses), or None
    weights: list
    saved: list
    restore: object
    sess: object
    reset: object = None  # reset(sess, seed): the runner's own state back to new


def _build_member(recipe, input_dim, output_dim, seed, runner, epochs_per_run=None):
    """A network in a graph of its own, seeded as a notebook seeds it
    (``set_random_seed(seed)``), its session with the variables initialised, and what
    trains it: ``runner`` "graph" (``graph_loop``), "xla" (an ``Engine`` of
    ``epochs_per_run`` epochs per call) or None (trained elsewhere, see ``_Trainers``)."""
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(seed)
        mdn = build_mdn(
            mixture_size=recipe.mixture_size,
            hidden_units=recipe.hidden_units,
            learning_rate=recipe.learning_rate,
            stable_loss=recipe.stable_loss,
            weight_decay=recipe.weight_decay,
            activation=recipe.activation,
            input_dim=input_dim,
            output_dim=output_dim,
        )
        reset = None
        if runner == "xla":
            runner = Engine(
                mdn,
                epochs_per_run=epochs_per_run,
                input_noise=recipe.input_noise,
                target_noise=recipe.target_noise,
                seed=seed,
            )
            reset = runner.reset
        if runner == "graph":
            network = set(tf1.global_variables())
            runner = graph_loop(mdn)
            adam = tf1.variables_initializer(
                [v for v in tf1.global_variables() if v not in network]
            )

            def reset(sess, seed):  # graph_loop's Adam; its noise comes from the feed
                sess.run(adam)

        weights = [w for layer in mdn.layers for w in layer]
        # to put the best checkpoint back: one placeholder and assign op per weight
        saved = [tf1.placeholder(w.dtype.base_dtype, w.shape) for w in weights]
        restore = tf.group(*[w.assign(v) for w, v in zip(weights, saved)])
        sess = tf1.Session()
        sess.run(tf1.global_variables_initializer())
    return _Member(mdn, runner, weights, saved, restore, sess, reset)


class _Trainers:
    """The networks that train a fit's members, one per thread: each member's initial
    weights are loaded into a free one, trained there and copied back to the member's own
    graph. So each thread builds the training loop once per fit instead of once per member
    (graph_loop about 0.15 s, the XLA engine a compilation of 0.8 s or more). A member's
    result does not depend on which trainer ran it: each start puts the runner's state
    (Adam's moments and beta powers; the XLA engine's epoch count and noise seed) back to
    new, and every trainer runs the same ops."""

    def __init__(self, recipe, input_dim, output_dim, count, epochs_per_run):
        self._free = queue.SimpleQueue()
        self._all = []
        for _ in range(count):
            trainer = _build_member(recipe, input_dim, output_dim, 0, recipe.engine, epochs_per_run)
            self._all.append(trainer)
            self._free.put(trainer)

    @contextmanager
    def start(self, member, seed):
        """A trainer holding ``member``'s weights, its runner reset (the XLA engine's noise
        to ``seed``); returned to the pool when the block ends."""
        trainer = self._free.get()
        try:
            trainer.sess.run(trainer.restore, _feed(trainer, member.sess.run(member.weights)))
            trainer.reset(trainer.sess, seed)
            yield trainer
        finally:
            self._free.put(trainer)

    def close(self):
        for trainer in self._all:
            trainer.sess.close()


def _feed(member, values):
    """The feed that ``member.restore`` writes ``values`` (one array per weight) with."""
    return dict(zip(member.saved, values))


class TrainingDiverged(FloatingPointError):
    """A training loss became NaN or infinite; fit_mdn stops instead of returning NaNs."""


def _train_member(
    trainers, epochs_per_run, recipe, x_tr, y_tr, x_va, y_va, seed, monitor, nll_shift, bar, name
):
    """Train one member of a fit, on a free trainer of ``trainers`` (or, when that is None,
    in its own graph with a runner of ``epochs_per_run`` epochs per call); returns ((its
    session, its MDN) with the weights to keep, losses, validation and monitor histories,
    best epoch)."""
    widths = x_tr.shape[1], y_tr.shape[1]
    args = recipe, x_tr, y_tr, x_va, y_va, seed, monitor, nll_shift, bar, name
    try:
        if trainers is None:  # one network: it trains in its own graph
            member = _build_member(recipe, *widths, seed, recipe.engine, epochs_per_run)
            result = _train(member, *args)
        else:
            member = _build_member(recipe, *widths, seed, None)
            with trainers.start(member, seed) as trainer:
                result = _train(trainer, *args)
    except TrainingDiverged:
        member.sess.close()
        raise
    weights, losses, val, mon, best_epoch = result
    member.sess.run(member.restore, _feed(member, weights))
    return (member.sess, member.mdn), losses, val, mon, best_epoch


def _train(member, recipe, x_tr, y_tr, x_va, y_va, seed, monitor, nll_shift, bar, name):
    """Train ``member`` (its own network, or a trainer holding its weights); returns (the
    weights to keep: the best check's, else the last, losses, validation and monitor
    histories, the epoch the weights come from)."""
    mdn, runner, weights, sess = member.mdn, member.runner, member.weights, member.sess
    noise_rng = np.random.default_rng(seed)
    noisy = recipe.input_noise > 0 or recipe.target_noise > 0
    n_tr = len(x_tr)
    batch = n_tr if recipe.batch_size is None else min(recipe.batch_size, n_tr)
    steps_per_epoch = n_tr // batch
    shuffle_rng = np.random.default_rng((seed, 1))  # its own stream: the noise's is unchanged
    losses, val, mon = [], [], []
    best = (np.inf, 0, None)  # (validation NLL, epoch, weights)
    checks_without_gain = 0

    def exact_nll(x, y):  # in the data's units: + log of the scaling's Jacobian
        return float(sess.run(mdn.nll, {mdn.x: x, mdn.y: y})) + nll_shift

    def batches(epochs):
        """The graph loop's (steps, batch, input_dim) inputs and (steps, batch, D) targets
        for the next epochs: steps_per_epoch minibatches of a fresh shuffle per epoch (or
        the full batch), with fresh noise per step."""
        if not noisy and batch == n_tr:
            return (
                np.broadcast_to(x_tr, (epochs, *x_tr.shape)),
                np.broadcast_to(y_tr, (epochs, *y_tr.shape)),
            )
        steps = epochs * steps_per_epoch
        xs = np.empty((steps, batch, x_tr.shape[1]), dtype=np.float32)
        ys = np.empty((steps, batch, y_tr.shape[1]), dtype=np.float32)
        for epoch in range(epochs):
            order = shuffle_rng.permutation(n_tr) if batch < n_tr else slice(None)
            x_epoch, y_epoch = x_tr[order], y_tr[order]
            for j in range(steps_per_epoch):
                i, rows = epoch * steps_per_epoch + j, slice(j * batch, (j + 1) * batch)
                xs[i], ys[i] = x_epoch[rows], y_epoch[rows]
                if noisy:  # x then y noise per step: one stream, in step order
                    xs[i] += recipe.input_noise * noise_rng.standard_normal(xs[i].shape)
                    ys[i] += recipe.target_noise * noise_rng.standard_normal(ys[i].shape)
        return xs, ys

    def run_epochs(epochs):
        """Train ``epochs`` epochs; returns each epoch's loss (the mean of its steps')."""
        if recipe.engine == "xla":
            return runner.train(sess, x_tr, y_tr, epochs)
        xs, ys, loop_losses = runner
        x_steps, y_steps = batches(epochs)
        step_losses = sess.run(loop_losses, {xs: x_steps, ys: y_steps})
        return step_losses.reshape(epochs, -1).mean(axis=1)

    # check_every epochs per Session.run, then the checks; without checks, as many epochs
    # per run as the engine takes
    checks = monitor is not None or x_va is not None
    chunk = recipe.check_every if checks or recipe.engine == "graph" else runner.epochs_per_run
    for epoch in range(chunk, recipe.epochs + chunk, chunk):
        steps = chunk - max(0, epoch - recipe.epochs)
        losses.extend(run_epochs(steps))
        if not np.all(np.isfinite(losses[-steps:])):
            _diverged(recipe, name, len(losses) - steps, losses[-steps:], x_tr, y_tr)
        if bar is not None:
            bar.update(steps)
        if epoch > recipe.epochs:
            break
        if monitor is not None:
            mon.append((epoch, exact_nll(*monitor)))
        if x_va is not None:
            nll = exact_nll(x_va, y_va)
            val.append((epoch, nll))
            if nll < best[0]:
                best, checks_without_gain = (nll, epoch, sess.run(weights)), 0
            else:
                checks_without_gain += 1
                if checks_without_gain >= recipe.patience:
                    break
    if bar is not None:  # a member that stopped early still completes its share of the bar
        bar.update(recipe.epochs - len(losses))
    if best[2] is None:
        best = (None, len(losses), sess.run(weights))
    return best[2], np.array(losses), np.array(val), np.array(mon), best[1]


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
              ``default_recipe(n)``); chosen on eight problems of several kinds, real
              data included (README "A default for your own data");
            - "seed": the article exactly, on the graph loop (with ``seed=SEED`` it
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
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {recipe!r}")
    elif not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a recipe name or a Recipe, got {recipe!r}")
    x_data = _checks.matrix("x_data", x_data)
    y_data = _checks.matrix("y_data", y_data)
    _checks.same_length(x_data=x_data, y_data=y_data)
    if isinstance(recipe, str):  # "default" adapts to n (default_recipe); a Recipe is as given
        recipe = default_recipe(len(x_data)) if recipe == "default" else RECIPES[recipe]
    seed = _checks.optional_seed("seed", seed)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    if monitor is not None:
        if not isinstance(monitor, (tuple, list)) or len(monitor) != 2:
            raise TypeError(
                f"monitor must be an (x, y) pair of arrays, got {type(monitor).__name__}"
            )
        mx = _checks.matrix("monitor[0]", monitor[0], width=x_data.shape[1])
        my = _checks.matrix("monitor[1]", monitor[1], width=y_data.shape[1])
        _checks.same_length(**{"monitor[0]": mx, "monitor[1]": my})
        monitor = (mx.astype(np.float32), my.astype(np.float32))
    scaling, nll_shift = None, 0.0
    if recipe.standardize:
        (x_shift, x_scale), (y_shift, y_scale) = _mean_and_scale(x_data), _mean_and_scale(y_data)
        scaling = (x_shift, x_scale, y_shift, y_scale)
        x_data, y_data = (x_data - x_shift) / x_scale, (y_data - y_shift) / y_scale
        if monitor is not None:
            monitor = ((monitor[0] - x_shift) / x_scale, (monitor[1] - y_shift) / y_scale)
            monitor = tuple(a.astype(np.float32) for a in monitor)
        nll_shift = float(np.sum(np.log(y_scale)))  # NLL in the data's units
    x_data, y_data = x_data.astype(np.float32), y_data.astype(np.float32)

    n_val = _validation_size(recipe, len(x_data))
    # draw every member's seed and split first, so results do not depend on scheduling
    rng = np.random.default_rng(seed)
    jobs = []
    held_out = np.zeros((recipe.ensemble, len(x_data)), dtype=bool)
    for member in range(recipe.ensemble):
        member_seed = int(rng.integers(2**31 - 1))
        if recipe.ensemble == 1 and seed is not None:
            # one network: seed is its graph seed, as set_random_seed(SEED) in a notebook,
            # so fit_mdn(x, y, recipe="seed", seed=SEED) retraces notebook 3 bit for bit
            member_seed = seed
        x_tr, y_tr, x_va, y_va = x_data, y_data, None, None
        if recipe.validation_fraction > 0:
            order = rng.permutation(len(x_data))
            va, tr = order[:n_val], order[n_val:]
            held_out[member, va] = True
            x_tr, y_tr, x_va, y_va = x_data[tr], y_data[tr], x_data[va], y_data[va]
        jobs.append((recipe, x_tr, y_tr, x_va, y_va, member_seed, monitor, nll_shift))
    names = [f"member {i + 1} of {recipe.ensemble}" for i in range(recipe.ensemble)]
    start = time.perf_counter()
    # members are independent graphs and sessions; TensorFlow releases the GIL while a
    # session runs, so one Python thread per core trains members side by side
    threads = min(len(jobs), os.cpu_count() or 1)
    quiet = monitor is None and recipe.validation_fraction == 0
    epochs_per_run = min(recipe.epochs, QUIET_EPOCHS if quiet else recipe.check_every)
    width = (x_data.shape[1], y_data.shape[1])
    # an ensemble's members train on one network per thread; a single network in its own
    trainers = None if len(jobs) == 1 else _Trainers(recipe, *width, threads, epochs_per_run)
    with ThreadPoolExecutor(threads) as pool, closing(trainers) if trainers else nullcontext():
        with tqdm(
            total=recipe.epochs * recipe.ensemble,
            desc="fit_mdn",
            unit="epoch",
            disable=not progress,
        ) as bar:
            results = list(
                pool.map(
                    lambda job, name: _train_member(trainers, epochs_per_run, *job, bar, name),
                    jobs,
                    names,
                )
            )
    members, losses, vals, mons, best_epochs = (list(r) for r in zip(*results))
    sigma_scale = 1.0
    if recipe.calibrate_sigma:
        mixtures = [_member_mixture(sess, mdn, x_data) for sess, mdn in members]
        sigma_scale = oob_sigma_scale(mixtures, held_out, y_data)
    shortest = min(len(loss) for loss in losses)
    return FittedMDN(
        recipe=recipe,
        _members=members,
        loss_history=np.mean([loss[:shortest] for loss in losses], axis=0),
        val_history=vals,
        monitor_history=mons[0] if recipe.ensemble == 1 else np.array(mons, dtype=object),
        best_epochs=best_epochs,
        sigma_scale=sigma_scale,
        train_s=time.perf_counter() - start,
        _scaling=scaling,
    )


def _mean_and_scale(a):
    """Column means and standard deviations of a (n, d); a constant column keeps scale 1."""
    scale = a.std(axis=0)
    return a.mean(axis=0), np.where(scale > 0, scale, 1.0)
