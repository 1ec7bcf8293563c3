"""Training machinery for ``build_mdn``'s network: many Adam epochs per ``Session.run``.

``Engine`` compiles the epochs with XLA (``tf.function(jit_compile=True)``): forward pass,
loss, gradients and Adam's update fuse into a few kernels, and one call runs
``epochs_per_run`` epochs in a compiled loop. What the network's ``train_step`` does per
epoch, up to float rounding; the trained weights land in the MDN's own variables, so
``sess.run(mdn.p_out, ...)``, ``mdn.nll`` and checkpoints see them. Beyond the article it
adds fresh Gaussian noise to the inputs and targets at every epoch (noise regularisation).

``graph_loop`` is the plain TF1 alternative: the same steps in a ``tf.while_loop`` of
ordinary ops, bit-identical to as many ``train_step`` runs (and slower than the engine).

Both work in TF1 graph mode, under ``disable_eager_execution`` or ``disable_v2_behavior``::

    mdn = mdn_tf.build_mdn()
    engine = mdn_tf.engine.Engine(mdn)  # before the initializer, or run engine.initializer
    sess.run(tf.compat.v1.global_variables_initializer())
    losses = engine.train(sess, x_data, y_data, epochs=2500)  # (2500,) training losses
"""

import functools
import os

import numpy as np

from mdn_tf import _checks
from mdn_tf._tf import require_graph_mode, static_shape, tf, tf1
from mdn_tf.graph import (
    factor_from_log,
    mixture_nll,
    mixture_nll_stable,
    resolve_activation,
    split_head,
)

# tf.compat.v1.train.AdamOptimizer's defaults, which build_mdn's train_step uses
BETA1, BETA2, ADAM_EPSILON = 0.9, 0.999, 1e-8


def _forward(params, x, settings):
    """The network on x (N, input_dim) with weights ``params`` (kernel, bias, kernel, ...):
    (logits (N, K), means, log-sigmas (N, K) or (N, K, D)).

    Feature-major: activations are (units, N), so each layer is W^T h with the kernel as
    stored (in, out); XLA's CPU matmuls run fastest in that layout for N >> units.
    """
    activation = resolve_activation(settings["activation"])
    h = tf.transpose(x)  # (input_dim, N)
    layers = len(params) // 2
    for i in range(layers):
        kernel, bias = params[2 * i], params[2 * i + 1]
        h = tf.matmul(kernel, h, transpose_a=True) + bias[:, None]
        if i < layers - 1 and activation is not None:
            h = activation(h)
    out = tf.transpose(h)
    return split_head(out, settings["mixture_size"], settings["output_dim"], settings["covariance"])


def _objective(head, y, kernels, settings):
    """(training loss, loss + weight decay) of the head's (logits, means, log-sigmas) on
    targets y, as build_mdn defines them."""
    return _with_decay(_loss(head, y, settings), kernels, settings)


def _loss(head, y, settings):
    """The training loss (clamped or stable NLL, no decay) of the head on targets y."""
    p, mu, log_sigma = head
    if settings["stable_loss"]:
        return mixture_nll_stable(y, p, mu, log_sigma)
    full = settings["covariance"] == "full"
    sigma = factor_from_log(log_sigma) if full else tf.exp(log_sigma)
    return mixture_nll(y, tf.nn.softmax(p), mu, sigma, epsilon=settings["epsilon"])


def _with_decay(loss, kernels, settings):
    """(loss, loss + weight_decay * sum of the kernels' squares)."""
    if settings["weight_decay"] == 0:
        return loss, loss
    decay = tf.add_n([tf.reduce_sum(tf.square(k)) for k in kernels])
    return loss, loss + settings["weight_decay"] * decay


def row_shards():
    """How many row shards the engine cuts each epoch into: 2 when XLA has two or more
    threads (``TF_NUM_INTRAOP_THREADS``, read when TensorFlow loads, else the machine's
    CPUs, as TensorFlow counts them), else 1.

    XLA runs independent work concurrently on its threads, so two halves of an epoch whose
    forward passes and gradients are separate computations run side by side: about 10-15%
    faster on 1000 points with two threads than one program whose matmuls are split. The
    price is a program twice the size, compiled in 1.4-1.6 s instead of 0.8 s; with one
    thread there is no gain, so there is one shard.
    """
    return 2 if intra_op_threads() >= 2 else 1


def intra_op_threads():
    """The intra-op threads XLA runs with: ``TF_NUM_INTRAOP_THREADS`` (read when TensorFlow
    loads) when set to a positive integer, else the machine's CPUs, as TensorFlow counts them."""
    threads = os.environ.get("TF_NUM_INTRAOP_THREADS", "").strip()
    threads = int(threads) if threads.isdigit() and int(threads) > 0 else None
    return threads or os.cpu_count() or 1


def _sharded_objective(params, x, y, settings, shards):
    """``_objective`` of the network on (x, y), its rows cut into ``shards`` near-equal
    parts (see ``row_shards``): the loss is sum_s (n_s / n) loss_s, the same mean up to
    rounding. A shard with no rows (n < shards) adds nothing."""
    n = tf.shape(x)[0]
    bounds = [n * s // shards for s in range(shards + 1)]
    total = 0.0
    for start, stop in zip(bounds[:-1], bounds[1:]):
        loss = _loss(_forward(params, x[start:stop], settings), y[start:stop], settings)
        share = tf.cast(stop - start, tf.float32) / tf.cast(n, tf.float32)
        total += tf.where(stop > start, loss, 0.0) * share  # an empty shard's mean is NaN
    return _with_decay(total, params[::2], settings)


def _adam(params, grads, m, v, beta1_power, beta2_power, learning_rate):
    """One step of TF1's Adam (training_ops' ApplyAdam), on lists of tensors:

    m += (g - m)(1 - beta1),  v += (g^2 - v)(1 - beta2),
    w -= m lr sqrt(1 - beta2^t) / (1 - beta1^t) / (sqrt(v) + eps)
    """
    alpha = learning_rate * tf.sqrt(1 - beta2_power) / (1 - beta1_power)
    m = [a + (g - a) * (1 - BETA1) for a, g in zip(m, grads)]
    v = [a + (g * g - a) * (1 - BETA2) for a, g in zip(v, grads)]
    params = [w - a * alpha / (tf.sqrt(b) + ADAM_EPSILON) for w, a, b in zip(params, m, v)]
    return params, m, v


def noise(shape, seed, counter):
    """Standard normal draws of the engine's noise stream at (seed, counter), Philox.

    The engine draws them inside its XLA-compiled loop; XLA orders Philox's output
    differently from TensorFlow's CPU kernel, so to reproduce them, call this inside a
    ``tf.function(jit_compile=True)`` too, on fed inputs (constants would be folded by the
    CPU kernel first).
    """
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(counter, tf.int64)])
    return tf.random.stateless_normal(shape, key, alg="philox")


@functools.cache
def _compiled_epochs(settings_items, epochs_per_run, input_noise, target_noise, shards):
    """The XLA function: up to ``epochs_per_run`` Adam epochs on (x, y) from a state.

    One function object per configuration (``settings_items``: build_mdn's settings as
    sorted pairs), shared by every engine built with it: in one session, such engines
    (fit_mdn's ensemble members) run one compiled program, compiled once.
    """
    settings = dict(settings_items)

    @tf.function(jit_compile=True, autograph=False)
    def run(x, y, epochs, seed, step, params, m, v, beta1_power, beta2_power):
        def epoch(i, step, params, m, v, beta1_power, beta2_power, losses):
            x_i, y_i = x, y
            if input_noise > 0:  # a fresh draw per epoch: the stream is (seed, 2 step)
                x_i = x + input_noise * noise(tf.shape(x), seed, 2 * step)
            if target_noise > 0:
                y_i = y + target_noise * noise(tf.shape(y), seed, 2 * step + 1)
            loss, objective = _sharded_objective(params, x_i, y_i, settings, shards)
            grads = tf.gradients(objective, params)
            beta1_power, beta2_power = beta1_power * BETA1, beta2_power * BETA2
            params, m, v = _adam(
                params, grads, m, v, beta1_power, beta2_power, settings["learning_rate"]
            )
            losses = losses.write(i, loss)
            return i + 1, step + 1, params, m, v, beta1_power, beta2_power, losses

        state = (0, step, params, m, v, beta1_power, beta2_power)
        losses = tf.TensorArray(tf.float32, size=epochs_per_run)
        out = tf.while_loop(
            lambda i, *_: i < epochs,
            epoch,
            (*state, losses),
            maximum_iterations=epochs_per_run,
        )
        return out[1:7], out[7].stack()

    return run


class Engine:
    """Adam epochs of a ``build_mdn`` network, ``epochs_per_run`` of them per compiled call.

    Each epoch is one full-batch step on (x, y) as the network's ``train_step`` takes it:
    the same loss (clamped or stable), weight decay, learning rate and Adam (beta1 0.9,
    beta2 0.999, eps 1e-8). With ``input_noise`` or ``target_noise`` > 0, each epoch
    trains on x + input_noise * z and y + target_noise * z' with fresh standard normal
    z, z' drawn by ``noise`` at (seed, 2 t) and (seed, 2 t + 1) for the engine's t-th epoch:
    the same seed gives the same noise, on any call pattern. With two or more XLA threads
    each epoch runs as two row shards (``row_shards``), read when the engine is built.

    The engine keeps Adam's moments, its beta powers, the epoch count and the noise seed in
    variables of its own (scope "engine"); ``initializer`` resets them, and ``reset``
    starts a new run with another seed, so that one engine trains network after network
    (load their weights first) on code compiled once. The first call compiles (about a
    second); later calls with the same number of points reuse the compiled code.
    """

    def __init__(self, mdn, epochs_per_run=10, input_noise=0.0, target_noise=0.0, seed=0):
        require_graph_mode("Engine")
        if not getattr(mdn, "layers", None) or not getattr(mdn, "settings", None):
            raise TypeError(f"mdn must be an MDN from build_mdn, got {type(mdn).__name__}")
        self.epochs_per_run = _checks.positive_int("epochs_per_run", epochs_per_run)
        self.input_noise = _checks.non_negative_float("input_noise", input_noise)
        self.target_noise = _checks.non_negative_float("target_noise", target_noise)
        seed = _checks.non_negative_int("seed", seed)
        self.mdn = mdn
        self.shards = row_shards()
        settings = mdn.settings
        weights = [w for layer in mdn.layers for w in layer]
        with mdn.x.graph.as_default(), tf1.variable_scope(None, default_name="engine"):
            self.x = tf1.placeholder(tf.float32, (None, settings["input_dim"]), name="x")
            self.y = tf1.placeholder(tf.float32, (None, settings["output_dim"]), name="y")
            self.epochs = tf1.placeholder(tf.int32, (), name="epochs")

            def zeros(name, shape, dtype=tf.float32):
                return tf1.get_variable(name, shape, dtype, tf1.zeros_initializer(), False)

            m = [zeros(f"m{i}", static_shape(w)) for i, w in enumerate(weights)]
            v = [zeros(f"v{i}", static_shape(w)) for i, w in enumerate(weights)]
            ones = tf1.ones_initializer()
            beta1_power = tf1.get_variable("beta1_power", (), tf.float32, ones, False)
            beta2_power = tf1.get_variable("beta2_power", (), tf.float32, ones, False)
            step = zeros("step", (), tf.int64)
            seed_init = tf1.constant_initializer(seed)
            self.seed = tf1.get_variable("seed", (), tf.int64, seed_init, trainable=False)
            state = [step, weights, m, v, beta1_power, beta2_power]
            own = [step, *m, *v, beta1_power, beta2_power, self.seed]
            self.initializer = tf1.variables_initializer(own)
            self._new_seed = tf1.placeholder(tf.int64, (), name="new_seed")
            self._reseed = self.seed.assign(self._new_seed)

            run = _compiled_epochs(
                tuple(sorted(settings.items())),
                self.epochs_per_run,
                self.input_noise,
                self.target_noise,
                self.shards,
            )
            reads = tf.nest.map_structure(tf.identity, state)  # values, not variables
            new_state, losses = run(self.x, self.y, self.epochs, tf.identity(self.seed), *reads)
            updates = [
                variable.assign(value)
                for variable, value in zip(tf.nest.flatten(state), tf.nest.flatten(new_state))
            ]
            with tf.control_dependencies(updates):
                # the losses of the epochs run, fetched once the weights are written back
                self.losses = tf.identity(losses[: self.epochs], name="losses")

    def reset(self, sess, seed):
        """Start a new run in ``sess``: Adam's state and the epoch count as new, and the
        noise stream keyed by ``seed``. The network's weights are left as they are."""
        seed = _checks.non_negative_int("seed", seed)
        sess.run(self.initializer)
        sess.run(self._reseed, {self._new_seed: seed})

    def train(self, sess, x, y, epochs):
        """Run ``epochs`` epochs on (x (n, input_dim), y (n, D)) in ``sess``; returns the
        (epochs,) training losses, each on the weights before that epoch's step."""
        settings = self.mdn.settings
        x = _checks.matrix("x", x, width=settings["input_dim"]).astype(np.float32)
        y = _checks.matrix("y", y, width=settings["output_dim"]).astype(np.float32)
        _checks.same_length(x=x, y=y)
        epochs = _checks.positive_int("epochs", epochs)
        losses = []
        for start in range(0, epochs, self.epochs_per_run):
            count = min(self.epochs_per_run, epochs - start)
            feed = {self.x: x, self.y: y, self.epochs: count}
            losses.append(sess.run(self.losses, feed))
        return np.concatenate(losses)


def graph_loop(mdn):
    """The TF1 in-graph loop: (xs, ys, losses) with xs (steps, batch, input_dim) and ys
    (steps, batch, D) placeholders; running ``losses`` takes one Adam step per leading
    slice, exactly as ``train_step`` on that batch would (bit-identical weights and
    losses, with an Adam state of its own), and returns the (steps,) losses.

    Slower than ``Engine`` but made of ordinary TensorFlow ops only; ``fit_mdn`` uses it
    for the article's recipe, which retraces notebook 3's loop bit for bit.
    """
    require_graph_mode("graph_loop")
    settings = mdn.settings
    activation = resolve_activation(settings["activation"])
    weights = [w for layer in mdn.layers for w in layer]
    with mdn.x.graph.as_default(), tf1.name_scope("graph_loop"):
        xs = tf1.placeholder(tf.float32, (None, None, settings["input_dim"]), name="xs")
        ys = tf1.placeholder(tf.float32, (None, None, settings["output_dim"]), name="ys")
        optimizer = tf1.train.AdamOptimizer(learning_rate=settings["learning_rate"])

        def step_loss(x, y):
            h = x
            for i, (kernel, bias) in enumerate(mdn.layers):  # the ops dense builds
                h = tf.nn.bias_add(tf.matmul(h, kernel), bias)
                if i < len(mdn.layers) - 1 and activation is not None:
                    h = activation(h)
            k, d = settings["mixture_size"], settings["output_dim"]
            head = split_head(h, k, d, settings["covariance"])
            return _objective(head, y, weights[::2], settings)

        def body(step, losses):
            loss, objective = step_loss(xs[step], ys[step])
            update = optimizer.minimize(objective, var_list=weights)
            with tf.control_dependencies([update]):
                return step + 1, losses.write(step, loss)

        steps = tf.shape(xs)[0]
        _, losses = tf.while_loop(
            lambda step, _: step < steps,
            body,
            (tf.constant(0), tf.TensorArray(tf.float32, size=steps)),
        )
    return xs, ys, losses.stack()
