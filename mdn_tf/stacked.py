"""The package's one compiled trainer: a program over members stacked on a leading axis.

``fit_mdn`` trains its members here (``Recipe(engine="stacked")``, every named recipe but
the article's, ``"article"``). In a group of M members trained by one program, member m
keeps its own weights, Adam moments and beta powers, training and validation rows, noise
stream, minibatch shuffle, best weights and patience count, all as slices of arrays with
a leading member axis:

    kernels (M, in, out), biases (M, out), batches (M, steps, B, input_dim) and (M, steps, B, D)

The objective is the sum over members of each member's mean loss and weight decay, so its
gradient with respect to member m's slice is member m's own gradient; Adam is elementwise.
One step of the program is therefore M independent steps of ``build_mdn``'s
``train_step``, up to float rounding (``tests/test_stacked.py`` checks it against
``graph_loop``, bit-identical to ``train_step``). Each layer is one batched matmul over
the members, feature-major, XLA-compiled (``tf.function(jit_compile=True)``). This is the
package's one trainer: ``mdn_tf.engine.Engine`` runs it as a one-member group.

One call of the program runs up to ``periods`` periods of ``check_every`` epochs. After
each period it scores every member's exact NLL on its validation rows, keeps the weights
of a member's best check, counts its checks without gain, and stops it after
``patience`` such checks; a call returns as soon as a member stops. The minibatches and
noise come from numpy, member by member, exactly as the graph loop's (``BatchStream``).

``fit_mdn`` trains each member alone, as a group of one (``train_members``): every member
then runs the same program, so a fit compiles one, and a member's numbers do not depend
on the others. With two or more intra-op threads two members train side by side, one
Python thread each, in one shared session: two programs running in parallel use two cores
better than one program whose small matmuls are split (see docs/performance.md). The
session is kept for the process, keyed by the ``Network``, and XLA keeps one compiled
program per shape in it, so a second fit of the same shapes compiles nothing.
"""

import functools
import threading
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from mdn_tf import _checks
from mdn_tf._tf import intra_op_threads, side_by_side, tf, tf1
from mdn_tf.graph import (
    factor_from_log,
    network_graph,
    resolve_activation,
    row_nll_clamped,
    row_nll_stable,
    scale_log_sigma,
    split_head,
    weight_decay_term,
)

STEPS_PER_CALL = 200  # training steps one call of the program runs at most
ROWS_PER_CALL = 2_000_000  # and batch rows per member (full batches of many points)
# tf.compat.v1.train.AdamOptimizer's defaults, which build_mdn's train_step uses
BETA1, BETA2, ADAM_EPSILON = 0.9, 0.999, 1e-8


def forward(params, x, network):
    """The network on stacked inputs x (M, N, input_dim) with stacked weights ``params``
    (kernel (M, in, out), bias (M, out), ...): logits (M, N, K), means and log-sigmas
    (M, N, K, D), or log-factors (M, N, K, D, D) for a full covariance.

    Feature-major: activations are (M, units, N), so each layer is W^T h with the kernel
    as stored (in, out); XLA's CPU matmuls run fastest in that layout for N >> units."""
    activation = resolve_activation(network.activation)
    h = tf.transpose(x, (0, 2, 1))  # (M, input_dim, N)
    layers = len(params) // 2
    for i in range(layers):
        kernel, bias = params[2 * i], params[2 * i + 1]
        h = tf.matmul(kernel, h, transpose_a=True) + bias[:, :, None]
        if i < layers - 1 and activation is not None:
            h = activation(h)
    out = tf.transpose(h, (0, 2, 1))  # (M, N, units)
    k, d = network.mixture_size, network.output_dim
    return split_head(out, k, d, network.covariance)


def row_nll(head, y, network, exact=False):
    """Each point's NLL (M, N) under the stacked head, y (M, N, D): ``row_nll_stable``
    when ``exact`` or the network's ``stable_loss``, else the article's clamped loss
    (``row_nll_clamped``), as ``build_mdn`` trains it."""
    logits, mu, log_sigma = head
    y = y[:, :, None, :]  # (M, N, 1, D) against (M, N, K, D)
    full = network.covariance == "full"
    if exact or network.stable_loss:
        return row_nll_stable(y, logits, mu, log_sigma, full)
    sigma = factor_from_log(log_sigma) if full else tf.exp(log_sigma)
    p = tf.nn.softmax(logits, axis=-1)
    return row_nll_clamped(y, p, mu, sigma, network.epsilon, full)


def calibrated_nll(params, x, y, log_scales, network):
    """Each member's mean exact NLL on its rows x (M, N, input_dim), y (M, N, D) with its
    sigmas times the best of the factors exp(log_scales) (G,): min_g mean_n NLL (M,).
    The rows are scored once per factor, factor-major, as (M, G N) rows."""
    logits, mu, log_sigma = forward(params, x, network)
    members, rows, grid = tf.shape(x)[0], tf.shape(x)[1], tf.shape(log_scales)[0]
    tiled = [tf.tile(a, [1, grid] + [1] * (a.shape.rank - 2)) for a in (logits, mu, y)]
    log_sigma = tf.tile(log_sigma, [1, grid] + [1] * (log_sigma.shape.rank - 2))
    log_c = tf.broadcast_to(tf.repeat(log_scales, rows), tf.shape(log_sigma)[:2])
    log_sigma = scale_log_sigma(log_sigma, log_c, network.covariance)
    per_row = row_nll((tiled[0], tiled[1], log_sigma), tiled[2], network, exact=True)
    per_factor = tf.reduce_mean(tf.reshape(per_row, [members, grid, rows]), axis=2)
    return tf.reduce_min(per_factor, axis=1)


def _objective(params, x, y, network):
    """(each member's training loss (M,), the summed objective with each weight decay):
    sum_m loss_m + weight_decay * sum of squared kernel entries, so that the gradient
    with respect to member m's weights is member m's own."""
    losses = tf.reduce_mean(row_nll(forward(params, x, network), y, network), axis=1)
    objective = tf.reduce_sum(losses)
    if network.weight_decay > 0:
        objective += network.weight_decay * weight_decay_term(params[::2])
    return losses, objective


def _per_member(values, like):
    """(M,) values shaped to broadcast against ``like`` (M, ...)."""
    return tf.reshape(values, [-1] + [1] * (like.shape.rank - 1))


def adam(params, grads, m, v, beta1_power, beta2_power, learning_rate):
    """One step of TF1's Adam (training_ops' ApplyAdam) for each member, on stacked
    tensors (M, ...) with beta powers and learning rates (M,):

        m += (g - m)(1 - beta1),  v += (g^2 - v)(1 - beta2),
        w -= m lr sqrt(1 - beta2^t) / (1 - beta1^t) / (sqrt(v) + eps)
    """
    alpha = learning_rate * tf.sqrt(1 - beta2_power) / (1 - beta1_power)
    m = [a + (g - a) * (1 - BETA1) for a, g in zip(m, grads)]
    v = [a + (g * g - a) * (1 - BETA2) for a, g in zip(v, grads)]
    params = [
        w - a * _per_member(alpha, w) / (tf.sqrt(b) + ADAM_EPSILON) for w, a, b in zip(params, m, v)
    ]
    return params, m, v


class Check(NamedTuple):
    """Early stopping after a validation check: whether it is a new best (keep its
    weights), the best validation NLL so far, the checks since it, and whether patience
    ran out."""

    gain: object
    best_val: object
    since: object
    stop: object


def early_stopping(val, best_val, since, patience, where):
    """Early stopping's rule, for one member or many at once: a check whose validation NLL
    ``val`` is below ``best_val`` is the new best and resets the count; any other adds one;
    ``patience`` checks without gain stop the member. ``where`` is ``np.where`` on numbers
    or ``tf.where`` on tensors. Returns a ``Check``."""
    gain = val < best_val
    since = where(gain, 0, since + 1)
    return Check(gain, where(gain, val, best_val), since, since >= patience)


class AdamState(NamedTuple):
    """What a training step carries, each with a leading member axis (M, ...): the
    weights, Adam's moments and beta powers."""

    params: list
    m: list
    v: list
    beta1_power: object
    beta2_power: object


class _Periods(NamedTuple):
    """The period loop's state: periods, epochs and steps done; the epochs' mean losses,
    the checks' NLLs and the monitor's (TensorArrays); the best check's weights, its NLL
    and the checks since it; which members stopped; and the training state."""

    period: object
    epoch: object
    step: object
    log: object
    vals: object
    mons: object
    best: list
    best_val: object
    since: object
    stopped: object
    train: AdamState


@functools.cache
def program(network):
    """The compiled call: one function per network (see the module's docstring)."""

    @tf.function(jit_compile=True, autograph=False)
    def run(xs, ys, x_va, y_va, x_mon, y_mon, log_scales, control, state):
        """Train on the batches xs (M, T, B, input_dim), ys (M, T, B, D): ``periods``
        periods of ``period_epochs`` epochs of ``steps`` steps, each period followed by a
        validation check when ``check`` is 1 (and the NLL on the monitor rows (N, ...),
        the same for every member); stop early once a member stops. A check scores each
        member's validation NLL with its sigmas times the best of the factors
        exp(log_scales) (G,); log_scales = [0] scores the NLL as it is."""
        call = _Call(network, xs, ys, (x_va, y_va), (x_mon, y_mon), log_scales, control, state)
        arrays = [
            tf.TensorArray(tf.float32, size=call.max_epochs, element_shape=state.best_val.shape)
            for _ in range(3)
        ]
        stopped = tf.zeros_like(state.since, tf.bool)
        start = _Periods(
            0, 0, 0, *arrays, state.best, state.best_val, state.since, stopped, state.adam
        )
        end = tf.while_loop(
            lambda *loop: call.goes_on(_Periods(*loop)),
            lambda *loop: call.period(_Periods(*loop)),
            start,
            maximum_iterations=call.max_epochs,
        )
        new_state = GroupState(end.train, state.learning_rate, end.best, end.best_val, end.since)
        log, vals, mons = end.log.stack()[: end.epoch], end.vals.stack(), end.mons.stack()
        return end.epoch, log, vals[: end.period], mons[: end.period], end.stopped, new_state

    return run


class _Call:
    """One call of the program, as it is traced: its inputs (see ``program``) and the
    loops over periods, epochs and steps."""

    def __init__(self, network, xs, ys, validation, monitor, log_scales, control, state):
        self.network, self.xs, self.ys, self.log_scales = network, xs, ys, log_scales
        self.max_epochs = tf.shape(xs)[1]  # steps >= 1, so at most T epochs
        self.x_va, self.y_va = validation
        self.periods, self.period_epochs, self.steps, self.patience, check = tf.unstack(control)
        self.check = tf.cast(check, tf.bool)
        self.learning_rate = state.learning_rate  # (M,): each member's own
        members = tf.shape(xs)[0]
        self.x_mon, self.y_mon = (
            tf.broadcast_to(a, tf.concat([[members], tf.shape(a)], 0)) for a in monitor
        )

    def goes_on(self, loop):
        """Whether another period runs: periods remain and no member has stopped."""
        return tf.logical_and(
            loop.period < self.periods, tf.logical_not(tf.reduce_any(loop.stopped))
        )

    def step(self, j, t, total, train):
        """Step ``j`` of an epoch on batch ``t``: Adam on the summed objective; ``total``
        adds each member's loss (M,)."""
        losses, objective = _objective(train.params, self.xs[:, t], self.ys[:, t], self.network)
        grads = tf.gradients(objective, train.params)
        b1, b2 = train.beta1_power * BETA1, train.beta2_power * BETA2
        params, m, v = adam(train.params, grads, train.m, train.v, b1, b2, self.learning_rate)
        return j + 1, t + 1, total + losses, AdamState(params, m, v, b1, b2)

    def epoch(self, e, t, log, train):
        """Epoch ``e`` from batch ``t``; writes its mean loss (M,) into ``log``."""
        zeros = tf.zeros_like(train.beta1_power)
        _, t, total, train = tf.while_loop(
            lambda j, *_: j < self.steps, self.step, (0, t, zeros, train)
        )
        log = log.write(e, total / tf.cast(self.steps, tf.float32))
        return e + 1, t, log, train

    def period(self, loop):
        """``period_epochs`` epochs, then (when ``check``) a check: each member's calibrated
        validation NLL, early stopping (``early_stopping``) and its monitor NLL."""
        e, t, log, train = tf.while_loop(
            lambda e2, *_: e2 < loop.epoch + self.period_epochs,
            self.epoch,
            (loop.epoch, loop.step, loop.log, loop.train),
            maximum_iterations=self.max_epochs,
        )
        params = train.params
        val = calibrated_nll(params, self.x_va, self.y_va, self.log_scales, self.network)
        head = forward(params, self.x_mon, self.network)
        mon = tf.reduce_mean(row_nll(head, self.y_mon, self.network, True), 1)
        checked = early_stopping(val, loop.best_val, loop.since, self.patience, tf.where)
        gain = tf.logical_and(self.check, checked.gain)  # a period without a check: no change
        return _Periods(
            period=loop.period + 1,
            epoch=e,
            step=t,
            log=log,
            vals=loop.vals.write(loop.period, val),
            mons=loop.mons.write(loop.period, mon),
            best=[tf.where(_per_member(gain, w), w, b) for w, b in zip(params, loop.best)],
            best_val=tf.where(self.check, checked.best_val, loop.best_val),
            since=tf.where(self.check, checked.since, loop.since),
            stopped=tf.logical_or(loop.stopped, tf.logical_and(self.check, checked.stop)),
            train=train,
        )


class BatchStream:
    """A member's training batches, epoch after epoch, as numpy: each epoch a fresh shuffle
    of the n training points into n // B minibatches of B (the full batch when B >= n, in
    order), with fresh Gaussian noise on x then y per step. The shuffle comes from
    ``default_rng((seed, 1))`` and the noise from ``default_rng(seed)``, so the batches
    depend only on the seed and the epoch, not on how many epochs are asked for at once.
    """

    def __init__(self, x, y, batch_size, input_noise, target_noise, seed):
        self.x, self.y = x, y
        n = len(x)
        self.batch = n if batch_size is None else min(batch_size, n)
        self.steps = n // self.batch
        self.input_noise, self.target_noise = input_noise, target_noise
        self.noise_rng = np.random.default_rng(seed)
        self.shuffle_rng = np.random.default_rng((seed, 1))  # its own stream

    @classmethod
    def of(cls, member, recipe):
        """A ``Member``'s stream, with the recipe's batch size and noise."""
        m, s = member, recipe
        return cls(m.x_tr, m.y_tr, s.batch_size, s.input_noise, s.target_noise, m.seed)

    @property
    def fixed(self):
        """True when every epoch is the same full batch (no noise, no shuffle)."""
        return self.batch == len(self.x) and self.input_noise == 0 and self.target_noise == 0

    def take(self, epochs):
        """The next ``epochs`` epochs: (xs (epochs * steps, B, input_dim), ys (..., D))."""
        x, y, b, steps = self.x, self.y, self.batch, self.steps
        noisy = self.input_noise > 0 or self.target_noise > 0
        if self.fixed:
            return np.broadcast_to(x, (epochs, *x.shape)), np.broadcast_to(y, (epochs, *y.shape))
        xs = np.empty((epochs * steps, b, x.shape[1]), dtype=np.float32)
        ys = np.empty((epochs * steps, b, y.shape[1]), dtype=np.float32)
        for epoch in range(epochs):
            order = self.shuffle_rng.permutation(len(x)) if b < len(x) else slice(None)
            x_epoch, y_epoch = x[order], y[order]
            for j in range(steps):
                i, rows = epoch * steps + j, slice(j * b, (j + 1) * b)
                xs[i], ys[i] = x_epoch[rows], y_epoch[rows]
                if noisy:  # x then y noise per step: one stream, in step order
                    xs[i] += self.input_noise * self.noise_rng.standard_normal(xs[i].shape)
                    ys[i] += self.target_noise * self.noise_rng.standard_normal(ys[i].shape)
        return xs, ys


@functools.cache
def _init_recipe(network):
    """How ``build_mdn`` under ``set_random_seed(seed)`` draws its kernels, read off one
    built graph: per kernel (shape, op seed, min, range) of its Glorot-uniform
    ``RandomUniform``; biases start at zero."""
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(1)
        mdn = network_graph(network)
        draws = []
        with tf1.Session(graph=graph) as sess:
            for kernel, _ in mdn.layers:
                add = kernel.initializer.inputs[1].op  # rnd * range + min
                mul, low = add.inputs
                rnd, span = mul.op.inputs
                assert rnd.op.type == "RandomUniform", rnd.op.type
                low_v, span_v = sess.run([low, span])
                draws.append((kernel.shape.as_list(), rnd.op.get_attr("seed2"), low_v, span_v))
    return tuple(draws)


def initial_weights(network, seeds):
    """The weights ``network_graph(network)`` starts from under ``set_random_seed(seed)``,
    for each seed, without building the network: stacked (M, ...) arrays in the order
    kernel, bias, kernel, ... Bit-identical to the built network's initial values."""
    draws = _init_recipe(network)
    graph = tf.Graph()
    with graph.as_default():
        ops = []
        for seed in seeds:
            seed = int(seed) % (2**31 - 1)  # as tf.compat.v1's get_seed truncates it
            row = []
            for shape, seed2, low, span in draws:
                s1, s2 = (0, 2**31 - 1) if (seed, seed2) == (0, 0) else (seed, seed2)
                rnd = tf.raw_ops.RandomUniform(shape=shape, dtype=tf.float32, seed=s1, seed2=s2)
                row.append(rnd * span + low)
            ops.append(row)
        with tf1.Session(graph=graph) as sess:
            values = sess.run(ops)
    out = []
    for i, (shape, *_rest) in enumerate(draws):
        out.append(np.stack([v[i] for v in values]))
        out.append(np.zeros((len(seeds), shape[1]), np.float32))
    return out


class _Session:
    """The program's graph and session for one network configuration, kept for the
    process so that its compiled code is reused (see ``_session``)."""

    def __init__(self, network):
        d_in, d_out = network.input_dim, network.output_dim
        shapes = network.weight_shapes
        self.graph = tf.Graph()
        with self.graph.as_default():

            def ph(dtype, *shape):
                return tf1.placeholder(dtype, (None, *shape))

            f32 = tf.float32
            self.xs, self.ys = ph(f32, None, None, d_in), ph(f32, None, None, d_out)
            self.x_va, self.y_va = ph(f32, None, d_in), ph(f32, None, d_out)
            self.x_mon, self.y_mon = ph(f32, d_in), ph(f32, d_out)
            self.log_scales = tf1.placeholder(f32, (None,))
            self.control = tf1.placeholder(tf.int32, (5,))
            weights = [[ph(f32, *s) for s in shapes] for _ in range(4)]
            adam = AdamState(*weights[:3], ph(f32), ph(f32))
            self.state = GroupState(adam, ph(f32), weights[3], ph(f32), ph(tf.int32))
            run = program(network)
            data = self.xs, self.ys, self.x_va, self.y_va, self.x_mon, self.y_mon
            self.fetch = run(*data, self.log_scales, self.control, self.state)
        self.sess = tf1.Session(graph=self.graph)
        self._shapes = {}  # (members, batches, validation and monitor shapes) -> a lock
        self._compiled = set()
        self._lock = threading.Lock()

    def run(self, xs, ys, x_va, y_va, x_mon, y_mon, log_scales, control, state):
        """One call of the program; the first call of a new size compiles it, once (a
        second thread asking for the same size meanwhile waits for that compilation)."""
        feed = {self.xs: xs, self.ys: ys, self.x_va: x_va, self.y_va: y_va}
        feed.update({self.x_mon: x_mon, self.y_mon: y_mon, self.log_scales: log_scales})
        feed[self.control] = control
        feed.update(zip(tf.nest.flatten(self.state), tf.nest.flatten(state)))
        key = (len(xs), xs.shape[1:], x_va.shape[1:], x_mon.shape, len(log_scales))
        if key in self._compiled:
            return self.sess.run(self.fetch, feed)
        with self._lock:
            lock = self._shapes.setdefault(key, threading.Lock())
        with lock:
            if key in self._compiled:  # another thread compiled it meanwhile
                return self.sess.run(self.fetch, feed)
            out = self.sess.run(self.fetch, feed)
            self._compiled.add(key)
        return out


_SESSIONS = {}
_SESSIONS_LOCK = threading.Lock()


def _session(network):
    """The process's ``_Session`` for ``network``, built on first use."""
    with _SESSIONS_LOCK:
        if network not in _SESSIONS:
            _SESSIONS[network] = _Session(network)
        return _SESSIONS[network]


def compiled_programs():
    """How many programs this process has compiled for ``fit_mdn``: one per network and
    set of shapes (members, batches, validation and monitor rows)."""
    with _SESSIONS_LOCK:
        return sum(len(session._compiled) for session in _SESSIONS.values())


def parallel_members():
    """How many members (groups of ``train_members``) train side by side: 2 when TensorFlow
    runs two or more intra-op threads (``TF_NUM_INTRAOP_THREADS``, else the CPU count),
    else 1: with one thread, XLA programs in one process take turns."""
    return 2 if intra_op_threads() >= 2 else 1


@dataclass
class Member:
    """One member to train: its initial weights (kernel, bias, ...), training and
    validation rows (validation None: no checks), seed (noise and shuffle) and name."""

    weights: list
    x_tr: np.ndarray
    y_tr: np.ndarray
    x_va: np.ndarray
    y_va: np.ndarray
    seed: int
    name: str = "member"
    # filled in by training
    losses: list = field(default_factory=list)
    val: list = field(default_factory=list)
    monitor: list = field(default_factory=list)
    best_epoch: int = 0
    stages: int = 1  # the stages it trained
    # (epoch, loss, learning rate) where its training loss stopped being finite
    divergences: list = field(default_factory=list)
    dropped: bool = False  # it diverged for good with no check to fall back on: no weights


# times a member whose training loss stops being finite goes on from its best check (or
# its start), each time at half the learning rate, before it stops for good
RESTARTS = 2

# a stage that lowers a member's best check by less than this (nats per point) is its last
STAGE_GAIN = 0.01

# the sigma factors a calibrated check tries: 0.25 to 4, 24 steps per factor of 16
CHECK_SCALES = np.linspace(np.log(0.25), np.log(4.0), 25).astype(np.float32)


class GroupState(NamedTuple):
    """A group's training state, each field with a leading member axis (M, ...): the
    weights with Adam's state, each member's learning rate, its best check's weights and
    validation NLL, and its checks since that best."""

    adam: AdamState
    learning_rate: np.ndarray
    best: list
    best_val: np.ndarray
    since: np.ndarray

    @classmethod
    def new(cls, weights, learning_rate):
        """Members starting from ``weights`` (one [kernel, bias, ...] list per member)."""
        params = [np.stack(ws) for ws in zip(*weights)]
        count = len(weights)
        zeros = [[np.zeros_like(w) for w in params] for _ in range(2)]
        powers = [np.ones(count, np.float32) for _ in range(2)]
        return cls(
            AdamState(params, *zeros, *powers),
            np.full(count, learning_rate, np.float32),
            [w.copy() for w in params],
            np.full(count, np.inf, np.float32),
            np.zeros(count, np.int32),
        )

    def restart(self, slot, weights, learning_rate):
        """Slot ``slot`` goes on from ``weights`` with a fresh Adam and ``learning_rate``
        (in place; its best check is kept)."""
        adam = self.adam
        for param, value in zip(adam.params, weights):
            param[slot] = value
        for moment in (*adam.m, *adam.v):
            moment[slot] = 0.0
        adam.beta1_power[slot] = adam.beta2_power[slot] = 1.0
        self.learning_rate[slot] = learning_rate
        self.since[slot] = 0


def train_members(
    network, members, recipe, nll_shift=0.0, monitor=None, on_epochs=None, group_size=1
):
    """Train ``members`` (a list of ``Member``) of one ``network`` as ``recipe`` (a
    ``Recipe``: epochs, checks, patience, batches, noise and its stages) says, in groups
    of ``group_size`` members, each group in one program.

    Returns nothing: each member's ``weights`` become the weights to keep (its best
    check's, or the last without validation), and its ``losses`` (each epoch's mean
    training loss), ``val`` ((epoch, NLL + nll_shift) per check), ``monitor`` (the same
    on the ``monitor`` pair (x, y), every ``check_every`` epochs), ``best_epoch``,
    ``stages`` and ``divergences`` are filled in; a member whose loss stopped being finite
    with no restart left and no check to fall back on is ``dropped``, its weights None.
    ``on_epochs(count)`` is called as member-epochs complete (a progress bar).

    ``parallel_members`` groups train side by side, each thread taking the next group when
    it is done. With groups of one (``fit_mdn``'s) a fit runs one program size, so it
    compiles once, and no slot idles; batching members gains nothing at the recipes'
    sizes (a member-epoch costs the same alone as in a group of eight), while a larger
    group's slots idle as its members stop (docs/performance.md).
    """
    _checks.positive_int("group_size", group_size)
    session = _session(network)
    groups = [members[i : i + group_size] for i in range(0, len(members), group_size)]

    def train(group, stopping):
        run = _Group(session, group, recipe, network.learning_rate, nll_shift, monitor)
        run.train(on_epochs, stopping)

    side_by_side(train, groups, parallel_members())


@dataclass
class _Slot:
    """A running member's place in its group: its batches and how its training goes."""

    member: Member
    stream: BatchStream
    pending: tuple = None  # epochs of batches drawn, not trained yet: (xs, ys)
    stage: int = 1
    stage_start_val: float = np.inf  # its best validation NLL when the stage began
    restarts: int = 0


class _Group:
    """A group of members trained in one program, in calls of up to ``STEPS_PER_CALL``
    steps. A stopped member leaves an idle slot (trained on another member's batches, never
    read) until every member has stopped."""

    def __init__(self, session, members, recipe, learning_rate, nll_shift, monitor):
        self.session, self.recipe, self.nll_shift = session, recipe, nll_shift
        self.checking = members[0].x_va is not None
        self.monitoring = monitor is not None
        if not self.monitoring:  # a placeholder row, never read
            monitor = members[0].x_tr[:1], members[0].y_tr[:1]
        self.monitor = monitor
        self.slots = [_Slot(m, BatchStream.of(m, recipe)) for m in members]
        self.steps = self.slots[0].stream.steps
        call_steps = max(1, min(STEPS_PER_CALL, ROWS_PER_CALL // self.slots[0].stream.batch))
        if self.checking or self.monitoring:
            self.period_epochs = recipe.check_every
            self.periods_per_call = max(1, call_steps // (self.steps * recipe.check_every))
        else:
            self.period_epochs, self.periods_per_call = max(1, call_steps // self.steps), 1
        rows = [(m.x_va, m.y_va) if self.checking else (m.x_tr[:1], m.y_tr[:1]) for m in members]
        self.x_va = np.stack([x for x, _ in rows])
        self.y_va = np.stack([y for _, y in rows])
        self.state = GroupState.new([m.weights for m in members], learning_rate)
        self.done = 0  # epochs every running member has trained

    def train(self, on_epochs, stopping):
        """Run calls until every member has stopped or trained ``recipe.epochs``, or
        ``stopping`` (an Event) is set."""
        while self.done < self.recipe.epochs and not stopping.is_set():
            epochs, running = self._call()
            if on_epochs is not None:
                on_epochs(epochs * running)
            if not any(self.slots):
                break

    def _plan(self):
        """(periods, epochs per period, whether the periods end in checks) of the next call."""
        remaining = self.recipe.epochs - self.done
        periodic = self.checking or self.monitoring
        if periodic and remaining >= self.period_epochs:  # periods that end in a check
            return (
                min(self.periods_per_call, remaining // self.period_epochs),
                self.period_epochs,
                True,
            )
        return 1, min(remaining, self.periods_per_call * self.period_epochs), False

    def _batches(self, slot, epochs):
        """The slot's next ``epochs`` epochs of batches, drawn ahead and kept as pending."""
        want = epochs * self.steps
        have = slot.pending
        if have is None or len(have[0]) < want:
            more = slot.stream.take(epochs - (0 if have is None else len(have[0]) // self.steps))
            have = more if have is None else tuple(np.concatenate(p) for p in zip(have, more))
        slot.pending = have
        return have[0][:want], have[1][:want]

    def _call(self):
        """One call of the program; returns (epochs trained, members that trained)."""
        periods, epochs_each, full = self._plan()
        want = periods * epochs_each
        batches = [None if s is None else self._batches(s, want) for s in self.slots]
        filler = next(b for b in batches if b is not None)
        width = self.periods_per_call * self.period_epochs * self.steps
        xs = np.zeros((len(self.slots), width, *filler[0].shape[1:]), np.float32)
        ys = np.zeros((len(self.slots), width, *filler[1].shape[1:]), np.float32)
        for i, b in enumerate(batches):
            xs[i, : want * self.steps], ys[i, : want * self.steps] = filler if b is None else b
        check = int(self.checking and full)
        control = np.array(
            [periods, epochs_each, self.steps, self.recipe.patience, check], np.int32
        )
        data = xs, ys, self.x_va, self.y_va, *self.monitor
        scales = CHECK_SCALES if self.recipe.calibrated_checks else np.zeros(1, np.float32)
        out = self.session.run(*data, scales, control, self.state)
        epochs, log, vals, mons, stopped, new_state = out
        epochs, self.state = int(epochs), new_state
        running = sum(s is not None for s in self.slots)
        diverged = set()
        for i, slot in enumerate(self.slots):
            if slot is not None:
                if self._record(
                    i, slot, epochs, log[:, i], vals[:, i], mons[:, i], full, epochs_each
                ):
                    diverged.add(i)
        self.done += epochs
        for i, slot in enumerate(self.slots):
            over = stopped[i] and i not in diverged  # a restarted member starts its count anew
            if slot is not None and (over or self.done >= self.recipe.epochs):
                self._stage_over(i, slot)
        return epochs, running

    def _record(self, i, slot, epochs, log, vals, mons, full, epochs_each):
        """Keep a member's losses and checks of the call; if its loss stopped being finite,
        restart it (``_diverged``) and return True."""
        member = slot.member
        finite = np.isfinite(log)
        member.losses.extend(log[: int(np.argmin(finite)) if not finite.all() else None].tolist())
        for c in range(epochs // epochs_each if full else 0):
            epoch = self.done + (c + 1) * epochs_each
            if self.checking and np.isfinite(vals[c]):
                member.val.append((epoch, float(vals[c]) + self.nll_shift))
            if self.monitoring and np.isfinite(mons[c]):
                member.monitor.append((epoch, float(mons[c]) + self.nll_shift))
        slot.pending = tuple(p[epochs * self.steps :] for p in slot.pending)
        if finite.all():
            return False
        self._diverged(i, slot, self.done + int(np.argmin(finite)) + 1, log[np.argmin(finite)])
        return True

    def _diverged(self, i, slot, epoch, loss):
        """A member whose loss became ``loss`` at ``epoch``: back to its best check (or its
        start) with half the learning rate, ``RESTARTS`` times; then it stops,
        keeping its best check if it has one."""
        member = slot.member
        member.divergences.append((epoch, float(loss), float(self.state.learning_rate[i])))
        if slot.restarts >= RESTARTS:
            self._finish(i, slot, diverged=True)
            return
        slot.restarts += 1
        has_best = np.isfinite(self.state.best_val[i])
        weights = [w[i] for w in self.state.best] if has_best else member.weights
        self.state.restart(i, weights, self.state.learning_rate[i] * 0.5)
        slot.pending = None

    def _stage_over(self, i, slot):
        """A member whose patience ran out, or whose epochs did: on to its next stage (from
        its best check, with its noise times ``stage_noise`` and a fresh Adam) if it has one
        and this stage lowered its best check by ``STAGE_GAIN`` or more; else it stops."""
        best_val, s = float(self.state.best_val[i]), self.recipe
        gained = np.isfinite(best_val) and best_val <= slot.stage_start_val - STAGE_GAIN
        if self.done < s.epochs and slot.stage < s.stages and gained:
            slot.stage, slot.stage_start_val = slot.stage + 1, best_val
            slot.stream.input_noise *= s.stage_noise
            slot.stream.target_noise *= s.stage_noise
            learning_rate = self.state.learning_rate[i] * s.stage_learning_rate
            self.state.restart(i, [w[i] for w in self.state.best], learning_rate)
            slot.pending = None
            return
        self._finish(i, slot)

    def _finish(self, i, slot, diverged=False):
        """Set a member's weights (its best check's, else its last; none if it diverged
        with no check to fall back on) and free its slot."""
        member, state = slot.member, self.state
        if self.checking and np.isfinite(state.best_val[i]):
            member.weights = [w[i].copy() for w in state.best]
            member.best_epoch = min(member.val, key=lambda ev: ev[1])[0]
        elif diverged:
            member.weights, member.dropped = None, True
        else:
            member.weights = [w[i].copy() for w in state.adam.params]
            member.best_epoch = len(member.losses)
        member.stages = slot.stage
        self.slots[i] = None
        state.since[i] = np.iinfo(np.int32).min  # an idle slot never stops a call
