"""The article's networks as TF1 graphs: a dense layer, the MLP, the MDN head and its loss.

``dense``, ``build_mlp`` and ``build_mdn`` add placeholders and variables to the default
graph and need TF1 graph mode: ``tf.compat.v1.disable_eager_execution()`` or
``tf.compat.v1.disable_v2_behavior()`` (both are tested); train with a
``tf.compat.v1.Session``. The two losses are plain tensor math: they also run eagerly and
inside ``tf.function``.
"""

import dataclasses
import math
from dataclasses import dataclass

from mdn_tf import _checks
from mdn_tf._tf import require_graph_mode, static_shape, tf, tf1

_ACTIVATIONS = {None: None, "tanh": tf.nn.tanh, "relu": tf.nn.relu}


def dense(inputs, units, activation=None, name=None):
    """Fully connected layer: ``activation(inputs @ kernel + bias)``.

    The graph-mode stand-in for ``tf.layers.dense``, which Keras 3 removed
    (``tf.compat.v1.layers.dense`` raises there). Same variables and initialisers:
    ``<name>/kernel`` (in_dim, units), Glorot-uniform, and ``<name>/bias`` (units,), zeros;
    and the same ops, ``MatMul`` then ``BiasAdd``, which TensorFlow's graph optimiser fuses
    (with the activation) into one kernel.

    Args:
        inputs: float32 tensor (batch, in_dim) with a known in_dim.
        units: output width.
        activation: a callable such as ``tf.nn.relu``, "relu", "tanh" or None (linear).
        name: variable scope; None gives "dense", "dense_1", ... as tf.layers did.

    Returns:
        float32 tensor (batch, units).
    """
    require_graph_mode("dense")
    units = _checks.positive_int("units", units)
    if isinstance(activation, str) or activation is None:
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be a callable, None, 'tanh' or 'relu', got {activation!r}"
            )
        activation = _ACTIVATIONS[activation]
    elif not callable(activation):
        raise TypeError(f"activation must be callable or None, got {activation!r}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {name!r}")
    if not isinstance(inputs, tf.Tensor) or inputs.shape.rank != 2:
        raise ValueError(f"inputs must be a rank-2 graph tensor (batch, in_dim), got {inputs!r}")
    in_dim = static_shape(inputs)[-1]
    if in_dim is None:
        raise ValueError(
            f"inputs must have a known last dimension (batch, in_dim), got shape "
            f"{static_shape(inputs)}"
        )
    with tf1.variable_scope(name, default_name="dense"):
        kernel = tf1.get_variable(
            "kernel", [in_dim, units], tf.float32, tf1.glorot_uniform_initializer()
        )
        bias = tf1.get_variable("bias", [units], tf.float32, tf1.zeros_initializer())
        out = tf.nn.bias_add(tf.matmul(inputs, kernel), bias)  # as tf.layers.dense
        return activation(out) if activation is not None else out


@dataclass(frozen=True)
class MLP:
    """Handles to the MLP graph: feed ``x``, ``y``; fetch ``y_out``, ``loss``, ``train_step``."""

    x: tf.Tensor
    y: tf.Tensor
    y_out: tf.Tensor
    loss: tf.Tensor
    train_step: tf.Operation


@dataclass(frozen=True)
class MDN:
    """Handles to the MDN graph: feed ``x``, ``y``; fetch the mixture, ``loss``, ``train_step``.

    ``x`` is (batch, input_dim) and ``y`` (batch, D); ``p_out`` is (batch, K); ``mu_out`` and
    ``sigma_out`` are (batch, K) for D = 1 and (batch, K, D) otherwise; ``nll`` is the
    exact mean NLL (``mixture_nll_stable``, no clamps), for monitoring whatever the loss.
    With ``build_mdn(train_loop=True)``, ``train_loop`` runs one training step per leading
    slice of ``xs`` (steps, batch, input_dim) and ``ys`` (steps, batch, D) in a single run
    and returns the (steps,) losses; otherwise those three are None.
    """

    x: tf.Tensor
    y: tf.Tensor
    p_out: tf.Tensor
    mu_out: tf.Tensor
    sigma_out: tf.Tensor
    loss: tf.Tensor
    train_step: tf.Operation
    nll: tf.Tensor = None
    xs: tf.Tensor = None
    ys: tf.Tensor = None
    train_loop: tf.Tensor = None


def _placeholders(input_dim, output_dim):
    x = tf1.placeholder(dtype=tf.float32, shape=(None, input_dim), name="x")
    y = tf1.placeholder(dtype=tf.float32, shape=(None, output_dim), name="y")
    return x, y


def build_mlp(hidden_units=20, learning_rate=0.1, input_dim=1, output_dim=1):
    """The article's first network, in the default graph.

    y_out = W2 tanh(W1 x + b1) + b2,  loss = sum((y_out - y)^2) / 2  (``tf.nn.l2_loss``),
    minimised by Adam. ``x`` is a (None, input_dim) placeholder, ``y`` and ``y_out``
    (None, output_dim); layers "hidden", "y_out".
    """
    require_graph_mode("build_mlp")
    hidden_units = _checks.positive_int("hidden_units", hidden_units)
    learning_rate = _checks.positive_float("learning_rate", learning_rate)
    input_dim = _checks.positive_int("input_dim", input_dim)
    output_dim = _checks.positive_int("output_dim", output_dim)
    x, y = _placeholders(input_dim, output_dim)
    hidden = dense(x, units=hidden_units, activation=tf.nn.tanh, name="hidden")
    y_out = dense(hidden, units=output_dim, activation=None, name="y_out")
    loss = tf.nn.l2_loss(y_out - y)
    train_step = tf1.train.AdamOptimizer(learning_rate=learning_rate).minimize(loss)
    return MLP(x=x, y=y, y_out=y_out, loss=loss, train_step=train_step)


def _check_head(y, **params):
    """Static shape checks of a loss's arguments; returns them as float32 tensors and the
    rank of the means (2: one output dimension, 3: (batch, K, D)).

    The first of ``params`` holds the weights (batch, K); the other two are (batch, K) for
    one output dimension or (batch, K, D); y is (batch, D). Dimensions unknown when the
    graph is built (None) pass: they are the feeder's to get right.
    """
    w_name, m_name, s_name = params
    weights, means, scales = (tf.convert_to_tensor(v, dtype=tf.float32) for v in params.values())
    y = tf.convert_to_tensor(y, dtype=tf.float32)
    shapes = {name: static_shape(v) for name, v in zip(params, (weights, means, scales))}
    if shapes[w_name] is not None and len(shapes[w_name]) != 2:
        raise ValueError(f"{w_name} must have shape (batch, K), got {tuple(shapes[w_name])}")
    ranks = {len(shapes[n]) for n in (m_name, s_name) if shapes[n] is not None}
    for name in (m_name, s_name):
        if shapes[name] is not None and len(shapes[name]) not in (2, 3):
            raise ValueError(
                f"{name} must have shape (batch, K) or (batch, K, D), got {tuple(shapes[name])}"
            )
    if len(ranks) > 1:
        raise ValueError(f"{m_name} and {s_name} must have the same rank, got {shapes}")
    widths = {n: shape[-1] if n == w_name else shape[1] for n, shape in shapes.items() if shape}
    widths = {n: k for n, k in widths.items() if k is not None}
    if len(set(widths.values())) > 1:
        raise ValueError(f"{', '.join(params)} must have the same K, got {widths}")
    rank = ranks.pop() if ranks else 2
    dims = {n: shapes[n][2] for n in (m_name, s_name) if rank == 3 and shapes[n] is not None}
    dims = {n: d for n, d in dims.items() if d is not None}
    if len(set(dims.values())) > 1:
        raise ValueError(f"{m_name} and {s_name} must have the same D, got {dims}")
    d = dims.popitem()[1] if dims else (1 if rank == 2 else None)
    y_shape = static_shape(y)
    if y_shape is not None and (
        len(y_shape) != 2 or d is not None and y_shape[-1] not in (None, d)
    ):
        want = "(batch, 1)" if rank == 2 else f"(batch, D) with D = {d}"
        raise ValueError(f"y must have shape {want}, got {tuple(y_shape)}")
    return y, weights, means, scales, rank


def mixture_nll(y, p_out, mu_out, sigma_out, epsilon=1e-5):
    """The article's MDN loss: mean negative log-likelihood with epsilon clamps.

        N_kd = exp(-(y_d - mu_kd)^2 / (2 max(sigma_kd, eps)^2)) / (sqrt(2 pi) max(sigma_kd, eps))
        loss = mean_n [ -log max(sum_k p_k prod_d N_kd, eps) ]

    (Bishop 1994, eq. 22-23, with the article's clamps; for D > 1 each component is a
    diagonal Gaussian.) The outer clamp caps each point's loss at -log(eps) = 11.51 for
    eps = 1e-5, and there its gradient is zero. Plain tensor math: works in a TF1 graph,
    eagerly and inside ``tf.function``.

    Args:
        y: (batch, D) targets.
        p_out: (batch, K) mixture weights.
        mu_out, sigma_out: (batch, K) means and standard deviations for D = 1, or
            (batch, K, D).
        epsilon: the clamp.

    Returns:
        scalar float32 tensor.
    """
    epsilon = _checks.positive_float("epsilon", epsilon)
    y, p_out, mu_out, sigma_out, rank = _check_head(
        y, p_out=p_out, mu_out=mu_out, sigma_out=sigma_out
    )
    if rank == 3:
        y = y[:, None, :]  # (batch, 1, D) against (batch, K, D)
    factor = 1 / math.sqrt(2 * math.pi)
    sigma = tf.maximum(sigma_out, epsilon)
    tmp = -tf.square(y - mu_out) / (2 * tf.square(sigma))
    y_normal = factor * tf.exp(tmp) / sigma
    if rank == 3:
        y_normal = tf.reduce_prod(y_normal, axis=2)  # (batch, K)
    loss = tf.reduce_sum(tf.multiply(y_normal, p_out), axis=1, keepdims=True)
    loss = -tf.math.log(tf.maximum(loss, epsilon))
    return tf.reduce_mean(loss)


def mixture_nll_stable(y, p_logits, mu_out, log_sigma):
    """The same negative log-likelihood as ``mixture_nll``, in log space and without clamps.

        log N_k = sum_d [ -(y_d - mu_kd)^2 / (2 sigma_kd^2) - log sigma_kd ] - D log(2 pi) / 2,
        sigma_kd = exp(s_kd),   loss = mean_n [ -logsumexp_k ( log_softmax(p_logits)_k + log N_k ) ]

    It takes the head's raw outputs (before softmax and exp), so no probability or density
    is ever formed: the loss and its gradients stay finite and informative for points far
    from every component, where the article's clamp returns -log(eps) with zero gradient.

    Args:
        y: (batch, D) targets.
        p_logits: (batch, K) weight logits.
        mu_out, log_sigma: (batch, K) for D = 1, or (batch, K, D).

    Returns:
        scalar float32 tensor.
    """
    y, p_logits, mu_out, log_sigma, rank = _check_head(
        y, p_logits=p_logits, mu_out=mu_out, log_sigma=log_sigma
    )
    log_p = tf.nn.log_softmax(p_logits, axis=1)
    if rank == 2:
        z = (y - mu_out) * tf.exp(-log_sigma)
        log_normal = -0.5 * tf.square(z) - log_sigma - 0.5 * math.log(2 * math.pi)
    else:
        z = (y[:, None, :] - mu_out) * tf.exp(-log_sigma)
        d = tf.cast(tf.shape(mu_out)[2], tf.float32)
        log_normal = tf.reduce_sum(-0.5 * tf.square(z) - log_sigma, axis=2)
        log_normal -= 0.5 * math.log(2 * math.pi) * d
    return -tf.reduce_mean(tf.reduce_logsumexp(log_p + log_normal, axis=1))


def _mdn_head(x, mixture_size, hidden_units, activation, output_dim):
    """The MDN's layers on x; creates its variables, or reuses them in a reusing scope.

    Returns the "out" layer's K + 2KD units split in the article's order: logits (batch, K),
    means and log-sigmas (batch, K) for D = 1, (batch, K, D) otherwise.
    """
    hidden = x
    for i, units in enumerate(hidden_units, start=1):
        hidden = dense(hidden, units=units, activation=activation, name=f"hidden{i}")
    k, d = mixture_size, output_dim
    out = dense(hidden, units=k + 2 * k * d, activation=None, name="out")
    if d == 1:
        return tf.split(out, 3, 1)  # p, mu_out, sigma: logits, means, log-sigmas
    p, mu_out, sigma = tf.split(out, [k, k * d, k * d], 1)
    return p, tf.reshape(mu_out, (-1, k, d)), tf.reshape(sigma, (-1, k, d))


def build_mdn(
    mixture_size=12,
    hidden_units=(64, 128),
    learning_rate=0.01,
    epsilon=1e-5,
    stable_loss=False,
    weight_decay=0.0,
    activation="relu",
    train_loop=False,
    shards=1,
    input_dim=1,
    output_dim=1,
):
    """The article's Mixture Density Network, in the default graph.

    x (None, 1) -> relu "hidden1" (64) -> relu "hidden2" (128) -> linear "out" (3K),
    split in the article's order into weights, means, sigmas:
    p_out = softmax(p), mu_out, sigma_out = exp(sigma); loss = ``mixture_nll``; Adam.

    Several inputs and outputs: x is (None, input_dim) and y (None, D) with D = output_dim.
    For D > 1 the "out" layer has K + 2KD units, split in the same order; ``mu_out`` and
    ``sigma_out`` are then (batch, K, D), each component a diagonal Gaussian.

    Beyond the article: ``stable_loss=True`` trains on ``mixture_nll_stable`` instead
    (``epsilon`` is then unused), and ``weight_decay`` > 0 adds
    weight_decay * sum of squared kernel entries to the minimised objective (not to ``loss``);
    ``activation`` ("relu", "tanh" or a callable) replaces the hidden layers' relu.

    ``train_loop=True`` also builds ``MDN.train_loop`` (about 0.15 s more graph building),
    which runs many Adam steps in one ``Session.run``: feed ``xs`` and ``ys``
    (steps, batch, input_dim) and (steps, batch, D), one batch per step, and it returns the
    (steps,) losses. Each step is exactly one ``train_step`` on that batch (same variables,
    same Adam state, bit-identical results), without the per-call cost of a Python loop
    around ``sess.run``.
    With ``shards`` > 1 each step computes its loss and gradients on that many row blocks of
    the batch, as independent subgraphs that run side by side on TensorFlow's inter-op
    threads, and adds them up: the same full-batch step up to float rounding, so not
    bit-identical to ``train_step`` (on 2 cores, ``shards=2`` is about 25% faster).
    """
    require_graph_mode("build_mdn")
    mixture_size = _checks.positive_int("mixture_size", mixture_size)
    hidden_units = _checks.unit_sequence("hidden_units", hidden_units)
    learning_rate = _checks.positive_float("learning_rate", learning_rate)
    epsilon = _checks.positive_float("epsilon", epsilon)
    if not isinstance(stable_loss, bool):
        raise TypeError(f"stable_loss must be True or False, got {stable_loss!r}")
    weight_decay = _checks.non_negative_float("weight_decay", weight_decay)
    if not isinstance(train_loop, bool):
        raise TypeError(f"train_loop must be True or False, got {train_loop!r}")
    shards = _checks.positive_int("shards", shards)
    if shards > 1 and not train_loop:
        raise ValueError(f"shards={shards} applies to the train_loop: set train_loop=True")
    input_dim = _checks.positive_int("input_dim", input_dim)
    output_dim = _checks.positive_int("output_dim", output_dim)
    x, y = _placeholders(input_dim, output_dim)
    scope = tf1.get_variable_scope()

    def loss_of(x, y):
        """(mixture tensors, loss, exact NLL) of the network on (x, y)."""
        p, mu_out, sigma = _mdn_head(x, mixture_size, hidden_units, activation, output_dim)
        p_out = tf.nn.softmax(p, name="prob_dist")
        sigma_out = tf.exp(sigma, name="sigma")
        nll = mixture_nll_stable(y, p, mu_out, sigma)
        if stable_loss:
            loss = nll
        else:
            loss = mixture_nll(y, p_out, mu_out, sigma_out, epsilon=epsilon)
        return (p_out, mu_out, sigma_out), loss, nll

    def with_decay(loss):
        """The minimised objective: loss + weight_decay * (sum of squared kernel entries)."""
        if weight_decay == 0:
            return loss
        kernels = [v for v in tf1.trainable_variables() if v.name.endswith("/kernel:0")]
        return loss + weight_decay * tf.add_n([tf.reduce_sum(tf.square(k)) for k in kernels])

    (p_out, mu_out, sigma_out), loss, nll = loss_of(x, y)
    optimizer = tf1.train.AdamOptimizer(learning_rate=learning_rate)
    train_step = optimizer.minimize(with_decay(loss))  # also creates Adam's slot variables

    mdn = MDN(
        x=x,
        y=y,
        p_out=p_out,
        mu_out=mu_out,
        sigma_out=sigma_out,
        loss=loss,
        train_step=train_step,
        nll=nll,
    )
    if not train_loop:
        return mdn
    xs = tf1.placeholder(dtype=tf.float32, shape=(None, None, input_dim), name="xs")
    ys = tf1.placeholder(dtype=tf.float32, shape=(None, None, output_dim), name="ys")

    def step_update(x_step, y_step):
        """(loss, Adam update) of one step on (x_step, y_step)."""
        with tf1.variable_scope(scope, reuse=True):
            if shards == 1:
                step_loss = loss_of(x_step, y_step)[1]
                return step_loss, optimizer.minimize(with_decay(step_loss))
            # row blocks as separate subgraphs, which TensorFlow's inter-op threads run side
            # by side; the block means, weighted by block size, add up to the batch mean
            n = tf.shape(x_step)[0]
            ends = [n * i // shards for i in range(shards + 1)]
            variables = tf1.trainable_variables()
            parts, grads = [], []
            for a, b in zip(ends[:-1], ends[1:]):
                share = tf.cast(b - a, tf.float32) / tf.cast(n, tf.float32)
                parts.append(share * loss_of(x_step[a:b], y_step[a:b])[1])
                # gated: with TF1 ref variables (disable_v2_behavior) an ungated weight
                # gradient could let Adam update a kernel that an input gradient still reads
                grads.append(tf.gradients(parts[-1], variables, gate_gradients=True))
            step_loss = tf.add_n(parts)
            grads = [tf.add_n(g) for g in zip(*grads)]
            if weight_decay > 0:
                decay_grads = tf.gradients(with_decay(tf.constant(0.0)), variables)
                grads = [g if d is None else g + d for g, d in zip(grads, decay_grads)]
            return step_loss, optimizer.apply_gradients(zip(grads, variables))

    def body(step, losses):
        step_loss, update = step_update(xs[step], ys[step])
        with tf.control_dependencies([update]):
            return step + 1, losses.write(step, step_loss)

    steps = tf.shape(xs)[0]
    _, losses = tf.while_loop(
        lambda step, _: step < steps,
        body,
        (tf.constant(0), tf.TensorArray(tf.float32, size=steps)),
        name="train_loop",
    )
    return dataclasses.replace(mdn, xs=xs, ys=ys, train_loop=losses.stack())
