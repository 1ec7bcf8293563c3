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


def resolve_activation(activation):
    """The callable for an activation given as "relu", "tanh", None (linear) or a callable."""
    if isinstance(activation, str) or activation is None:
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be a callable, None, 'tanh' or 'relu', got {activation!r}"
            )
        return _ACTIVATIONS[activation]
    if not callable(activation):
        raise TypeError(f"activation must be callable or None, got {activation!r}")
    return activation


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
    activation = resolve_activation(activation)
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
    ``sigma_out`` are (batch, K) for D = 1 and (batch, K, D) otherwise, and for
    ``covariance="full"`` ``sigma_out`` is the Cholesky factor (batch, K, D, D); ``nll`` is the
    exact mean NLL (``mixture_nll_stable``, no clamps), for monitoring whatever the loss;
    ``log_sigma`` the head's raw log-sigmas, the input of ``sigma_out = exp(log_sigma)``
    (float32 ``exp`` rounds sigmas below about 1e-45 to 0; ``exp`` of ``log_sigma`` in
    float64 does not).
    ``layers`` holds the (kernel, bias) variables of "hidden1", "hidden2", ..., "out" in
    order, and ``network`` the ``Network`` built from ``build_mdn``'s arguments: what a
    training engine (``mdn_tf.engine``) needs to run the same network and loss.
    """

    x: tf.Tensor
    y: tf.Tensor
    p_out: tf.Tensor
    mu_out: tf.Tensor
    sigma_out: tf.Tensor
    loss: tf.Tensor
    train_step: tf.Operation
    nll: tf.Tensor = None
    layers: tuple = ()
    network: "Network" = dataclasses.field(default=None, repr=False)
    log_sigma: tf.Tensor = None


COVARIANCES = ("diagonal", "full")


def check_covariance(covariance):
    """``covariance`` if it is "diagonal" or "full", else ValueError/TypeError."""
    if not isinstance(covariance, str):
        raise TypeError(f"covariance must be 'diagonal' or 'full', got {covariance!r}")
    if covariance not in COVARIANCES:
        raise ValueError(f"covariance must be 'diagonal' or 'full', got {covariance!r}")
    return covariance


@dataclass(frozen=True)
class Network:
    """What ``build_mdn`` builds and every trainer trains: layers, head, loss and Adam step.

    Layer widths (input_dim, *hidden_units, head_units): ``activation`` on the hidden
    layers, a linear "out" layer whose units split as K weight logits, K D means and K D
    log-sigmas (``covariance="diagonal"``), or K D log-diagonals and K D (D - 1) / 2
    entries below each Cholesky factor's diagonal (``"full"``). The loss is the article's
    clamped NLL (``mixture_nll``, clamp ``epsilon``) or ``mixture_nll_stable``, plus
    weight_decay * sum of squared kernel entries; Adam at ``learning_rate``.

    Frozen and hashable: a network is the key of the compiled programs a process keeps.
    ``to_json`` and ``from_json`` are its form in a saved model's ``model.json``.
    """

    mixture_size: int = 12
    hidden_units: tuple = (64, 128)
    learning_rate: float = 0.01
    epsilon: float = 1e-5
    stable_loss: bool = False
    weight_decay: float = 0.0
    activation: object = "relu"  # "relu", "tanh", None (linear) or a callable
    input_dim: int = 1
    output_dim: int = 1
    covariance: str = "diagonal"

    def __post_init__(self):
        checked = {
            "mixture_size": _checks.positive_int("mixture_size", self.mixture_size),
            "hidden_units": _checks.unit_sequence("hidden_units", self.hidden_units),
            "learning_rate": _checks.positive_float("learning_rate", self.learning_rate),
            "epsilon": _checks.positive_float("epsilon", self.epsilon),
            "weight_decay": _checks.non_negative_float("weight_decay", self.weight_decay),
            "input_dim": _checks.positive_int("input_dim", self.input_dim),
            "output_dim": _checks.positive_int("output_dim", self.output_dim),
            "covariance": check_covariance(self.covariance),
        }
        if not isinstance(self.stable_loss, bool):
            raise TypeError(f"stable_loss must be True or False, got {self.stable_loss!r}")
        resolve_activation(self.activation)
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def head_units(self):
        """Units of the "out" layer: K weight logits, K D means, then K D log-sigmas
        ("diagonal") or the K D (D + 1) / 2 entries of each component's Cholesky factor
        ("full": K D log-diagonals, then K D (D - 1) / 2 entries below the diagonal)."""
        k, d = self.mixture_size, self.output_dim
        return k + k * d + (k * d if self.covariance == "diagonal" else k * d * (d + 1) // 2)

    @property
    def weight_shapes(self):
        """Shapes of the weights in order: kernel (in, out), bias (out,), per layer."""
        widths = (self.input_dim, *self.hidden_units, self.head_units)
        return [s for a, b in zip(widths[:-1], widths[1:]) for s in ((a, b), (b,))]

    def to_json(self):
        """The fields as JSON values; TypeError for a callable activation."""
        if not isinstance(self.activation, (str, type(None))):
            raise TypeError(
                f"a network with a callable activation ({self.activation!r}) cannot be "
                "written as JSON: use activation 'relu' or 'tanh'"
            )
        fields = dataclasses.asdict(self)
        fields["hidden_units"] = list(self.hidden_units)
        return fields

    @classmethod
    def from_json(cls, fields):
        """The network ``to_json`` wrote; a form without ``covariance`` (written before
        full covariances) is diagonal."""
        if not isinstance(fields, dict):
            raise TypeError(f"a network's fields must be a JSON object, got {fields!r}")
        return cls(**{**fields, "hidden_units": tuple(fields.get("hidden_units", ()))})


def tril_index(output_dim):
    """Where each entry of a (D, D) factor comes from in a row [0, log-diagonal (D),
    below-diagonal (D (D - 1) / 2, row by row)]: a (D * D,) list of indices (0, the
    leading zero, above the diagonal)."""
    d = output_dim
    below = iter(range(1 + d, 1 + d + d * (d - 1) // 2))  # taken in row-major order
    return [1 + i if i == j else next(below) if j < i else 0 for i in range(d) for j in range(d)]


def log_factor(log_diag, below):
    """The head's raw factor entries as one (..., D, D) lower-triangular tensor: log of
    the Cholesky factor's diagonal on the diagonal, the entries below it as they are.

    Args:
        log_diag: (..., D) raw log-diagonal.
        below: (..., D (D - 1) / 2) entries below the diagonal, row by row.
    """
    d = _last_dim(log_diag)
    entries = [0.0 * log_diag[..., 0]] + [log_diag[..., i] for i in range(d)]
    entries += [below[..., i] for i in range(d * (d - 1) // 2)]
    index = tril_index(d)  # slices and stacks only: XLA-friendly, gradients included
    rows = [tf.stack([entries[index[i * d + j]] for j in range(d)], -1) for i in range(d)]
    return tf.stack(rows, axis=-2)


def _last_dim(tensor):
    """The static size of the last axis as an int (a ``Dimension`` under V1 behaviour)."""
    return tf.compat.dimension_value(tensor.shape[-1])


def _eye_mask(d):
    return tf.eye(d, dtype=tf.bool)


def factor_from_log(log_scale):
    """The Cholesky factor L (..., D, D) of a log-factor: its diagonal exponentiated."""
    eye = _eye_mask(_last_dim(log_scale))
    return tf.where(eye, tf.exp(tf.where(eye, log_scale, 0.0)), log_scale)


def scale_log_sigma(log_sigma, log_c, covariance):
    """The log-sigmas of the head with every sigma multiplied by c = exp(log_c):
    log-sigmas (..., K, D) + log c, or for a log-factor (..., K, D, D) the factor c L
    (log c added on the diagonal, the entries below it multiplied by c). log_c (...)
    broadcasts against the leading axes."""
    if covariance == "full":
        eye = _eye_mask(_last_dim(log_sigma))
        log_c = log_c[..., None, None, None]
        return tf.where(eye, log_sigma + log_c, log_sigma * tf.exp(log_c))
    return log_sigma + log_c[..., None, None]


def _diagonal(matrix):
    """The diagonal (..., D) of (..., D, D)."""
    return tf.stack([matrix[..., i, i] for i in range(_last_dim(matrix))], axis=-1)


def tril_solve(factor, r):
    """z with L z = r by forward substitution (no matrix is inverted): L (..., D, D)
    lower-triangular with a static D, r (..., D) broadcasting against it; returns (..., D).

        z_i = (r_i - sum_{j < i} L_ij z_j) / L_ii
    """
    z = []
    for i in range(_last_dim(factor)):
        acc = r[..., i]
        for j in range(i):
            acc = acc - factor[..., i, j] * z[j]
        z.append(acc / factor[..., i, i])
    return tf.stack(z, axis=-1)


def log_normal_full(y, mu, log_scale):
    """log N(y; mu, L L^T) over the last axis, L = ``factor_from_log(log_scale)``:

        -|L^-1 (y - mu)|^2 / 2 - sum_d log L_dd - D log(2 pi) / 2

    y (..., D) broadcasting against mu (..., D); log_scale (..., D, D). Returns (...).
    """
    z = tril_solve(factor_from_log(log_scale), y - mu)
    d = _last_dim(log_scale)
    log_det = tf.reduce_sum(_diagonal(log_scale), axis=-1)
    return -0.5 * tf.reduce_sum(tf.square(z), axis=-1) - log_det - 0.5 * d * math.log(2 * math.pi)


def density_full_clamped(y, mu, factor, epsilon):
    """N(y; mu, L_c L_c^T) over the last axis with the article's clamp on the factor's
    diagonal, L_c = L with max(L_dd, eps): the full-covariance ``mixture_nll`` term."""
    eye = _eye_mask(_last_dim(factor))
    clamped = tf.where(eye, tf.maximum(factor, epsilon), factor)
    diag = _diagonal(clamped)
    z = tril_solve(clamped, y - mu)
    d = _last_dim(factor)
    norm = (2 * math.pi) ** (d / 2) * tf.reduce_prod(diag, axis=-1)
    return tf.exp(-0.5 * tf.reduce_sum(tf.square(z), axis=-1)) / norm


def log_normal_diag(y, mu, log_sigma):
    """log N(y; mu, diag sigma^2) over the last axis, sigma = exp(log_sigma):

        sum_d [ -(y_d - mu_d)^2 / (2 sigma_d^2) - log sigma_d ] - D log(2 pi) / 2

    y (..., D) broadcasting against mu and log_sigma (..., D). Returns (...)."""
    z = (y - mu) * tf.exp(-log_sigma)
    d = _last_dim(mu)
    d = tf.cast(tf.shape(mu)[-1], tf.float32) if d is None else d
    return tf.reduce_sum(-0.5 * tf.square(z) - log_sigma, axis=-1) - 0.5 * math.log(2 * math.pi) * d


def row_nll_stable(y, logits, mu, log_sigma, full):
    """Each row's NLL in log space, no clamps, y (..., 1, D) against the head's logits
    (..., K), means (..., K, D) and log-sigmas (..., K, D) or log-factors (..., K, D, D):

        -logsumexp_k( log_softmax(logits)_k + log N(y; mu_k, Sigma_k) )  -> (...)
    """
    log_p = tf.nn.log_softmax(logits, axis=-1)
    log_normal = (log_normal_full if full else log_normal_diag)(y, mu, log_sigma)
    return -tf.reduce_logsumexp(log_p + log_normal, axis=-1)


def row_nll_clamped(y, p, mu, sigma, epsilon, full):
    """Each row's NLL with the article's clamps, y (..., 1, D) against weights p (..., K),
    means (..., K, D) and sigmas (..., K, D) or Cholesky factors (..., K, D, D):

        -log max( sum_k p_k prod_d N(y_d; mu_kd, max(sigma_kd, eps)), eps )  -> (...)

    (a factor's diagonal clamped the same way, ``density_full_clamped``)."""
    if full:
        normal = density_full_clamped(y, mu, sigma, epsilon)
    else:
        sigma = tf.maximum(sigma, epsilon)
        normal = tf.exp(-tf.square(y - mu) / (2 * tf.square(sigma))) / sigma
        normal = tf.reduce_prod(normal / math.sqrt(2 * math.pi), axis=-1)
    return -tf.math.log(tf.maximum(tf.reduce_sum(normal * p, axis=-1), epsilon))


def weight_decay_term(kernels):
    """sum of the squared entries of every kernel: what ``weight_decay`` multiplies."""
    return tf.add_n([tf.reduce_sum(tf.square(k)) for k in kernels])


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
    """Static shape checks of a loss's arguments; returns them as float32 tensors, the
    rank of the means (2: one output dimension, 3: (batch, K, D)) and whether the scale
    is a full (batch, K, D, D) factor.

    The first of ``params`` holds the weights (batch, K); the means are (batch, K) for one
    output dimension or (batch, K, D); the scales as the means, or (batch, K, D, D) with
    means (batch, K, D); y is (batch, D). Dimensions unknown when the graph is built (None)
    pass: they are the feeder's to get right.
    """
    w_name, m_name, s_name = params
    weights, means, scales = (tf.convert_to_tensor(v, dtype=tf.float32) for v in params.values())
    y = tf.convert_to_tensor(y, dtype=tf.float32)
    shapes = {name: static_shape(v) for name, v in zip(params, (weights, means, scales))}
    if shapes[w_name] is not None and len(shapes[w_name]) != 2:
        raise ValueError(f"{w_name} must have shape (batch, K), got {tuple(shapes[w_name])}")
    if shapes[m_name] is not None and len(shapes[m_name]) not in (2, 3):
        raise ValueError(
            f"{m_name} must have shape (batch, K) or (batch, K, D), got {tuple(shapes[m_name])}"
        )
    if shapes[s_name] is not None and len(shapes[s_name]) not in (2, 3, 4):
        raise ValueError(
            f"{s_name} must have shape (batch, K), (batch, K, D) or (batch, K, D, D), "
            f"got {tuple(shapes[s_name])}"
        )
    full = shapes[s_name] is not None and len(shapes[s_name]) == 4
    if full and shapes[s_name][-1] is None:
        raise ValueError(f"{s_name} must have a known D: (batch, K, D, D), got {shapes[s_name]}")
    m_rank = len(shapes[m_name]) if shapes[m_name] is not None else None
    s_rank = len(shapes[s_name]) - full if shapes[s_name] is not None else None
    if None not in (m_rank, s_rank) and (m_rank != s_rank or full and m_rank != 3):
        raise ValueError(
            f"{m_name} and {s_name} must have the same rank, (batch, K) or (batch, K, D), or "
            f"be (batch, K, D) and a factor (batch, K, D, D), got {shapes}"
        )
    widths = {n: shape[-1] if n == w_name else shape[1] for n, shape in shapes.items() if shape}
    widths = {n: k for n, k in widths.items() if k is not None}
    if len(set(widths.values())) > 1:
        raise ValueError(f"{', '.join(params)} must have the same K, got {widths}")
    rank = m_rank or s_rank or 2
    dims = {n: shapes[n][2] for n in (m_name, s_name) if rank == 3 and shapes[n] is not None}
    if full:
        dims[s_name + " (last axis)"] = shapes[s_name][3]
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
    return y, weights, means, scales, rank, full


def mixture_nll(y, p_out, mu_out, sigma_out, epsilon=1e-5):
    """The article's MDN loss: mean negative log-likelihood with epsilon clamps.

        N_kd = exp(-(y_d - mu_kd)^2 / (2 max(sigma_kd, eps)^2)) / (sqrt(2 pi) max(sigma_kd, eps))
        loss = mean_n [ -log max(sum_k p_k prod_d N_kd, eps) ]

    (Bishop 1994, eq. 22-23, with the article's clamps; for D > 1 each component is a
    diagonal Gaussian.) With a full covariance, ``sigma_out`` is each component's
    lower-triangular Cholesky factor L (batch, K, D, D) and N_k = N(y; mu_k, L_c L_c^T),
    L_c being L with its diagonal clamped to max(L_dd, eps) (``density_full_clamped``; a
    triangular solve, no inverse). The outer clamp caps each point's loss at -log(eps) = 11.51 for
    eps = 1e-5, and there its gradient is zero. Plain tensor math: works in a TF1 graph,
    eagerly and inside ``tf.function``.

    Args:
        y: (batch, D) targets.
        p_out: (batch, K) mixture weights.
        mu_out, sigma_out: (batch, K) means and standard deviations for D = 1, or
            (batch, K, D); or means (batch, K, D) and factors (batch, K, D, D).
        epsilon: the clamp.

    Returns:
        scalar float32 tensor.
    """
    epsilon = _checks.positive_float("epsilon", epsilon)
    y, p_out, mu_out, sigma_out, rank, full = _check_head(
        y, p_out=p_out, mu_out=mu_out, sigma_out=sigma_out
    )
    if full or rank == 3:  # (batch, K, D): each component a diagonal or full Gaussian
        rows = row_nll_clamped(y[:, None, :], p_out, mu_out, sigma_out, epsilon, full)
        return tf.reduce_mean(rows)
    factor = 1 / math.sqrt(2 * math.pi)
    sigma = tf.maximum(sigma_out, epsilon)
    tmp = -tf.square(y - mu_out) / (2 * tf.square(sigma))
    y_normal = factor * tf.exp(tmp) / sigma
    loss = tf.reduce_sum(tf.multiply(y_normal, p_out), axis=1, keepdims=True)
    loss = -tf.math.log(tf.maximum(loss, epsilon))
    return tf.reduce_mean(loss)


def mixture_nll_stable(y, p_logits, mu_out, log_sigma):
    """The same negative log-likelihood as ``mixture_nll``, in log space and without clamps.

        log N_k = sum_d [ -(y_d - mu_kd)^2 / (2 sigma_kd^2) - log sigma_kd ] - D log(2 pi) / 2,
        sigma_kd = exp(s_kd),   loss = mean_n [ -logsumexp_k ( log_softmax(p_logits)_k + log N_k ) ]

    With a full covariance, ``log_sigma`` is the head's log-factor (batch, K, D, D)
    (``log_factor``: the log of the Cholesky factor's diagonal on the diagonal, the entries
    below it as they are), and log N_k = ``log_normal_full``: a triangular solve against
    L, log det L = sum_d log L_dd read off the log-diagonal.

    It takes the head's raw outputs (before softmax and exp), so no probability or density
    is ever formed: the loss and its gradients stay finite and informative for points far
    from every component, where the article's clamp returns -log(eps) with zero gradient.

    Args:
        y: (batch, D) targets.
        p_logits: (batch, K) weight logits.
        mu_out, log_sigma: (batch, K) for D = 1, or (batch, K, D); or means (batch, K, D)
            and log-factors (batch, K, D, D).

    Returns:
        scalar float32 tensor.
    """
    y, p_logits, mu_out, log_sigma, rank, full = _check_head(
        y, p_logits=p_logits, mu_out=mu_out, log_sigma=log_sigma
    )
    if rank == 2:  # one output dimension: (batch, K) as (batch, K, 1)
        mu_out, log_sigma = mu_out[..., None], log_sigma[..., None]
    return tf.reduce_mean(row_nll_stable(y[:, None, :], p_logits, mu_out, log_sigma, full))


def training_objective(y, head, kernels, network):
    """(loss, objective) of a (batch, ...) head (logits, means, log-sigmas or log-factors)
    on y (batch, D) as ``build_mdn`` trains it: the loss ``mixture_nll_stable`` or the
    clamped ``mixture_nll``, the objective loss + weight_decay * ``weight_decay_term``."""
    logits, mu, log_sigma = head
    if network.stable_loss:
        loss = mixture_nll_stable(y, logits, mu, log_sigma)
    else:
        full = network.covariance == "full"
        sigma = factor_from_log(log_sigma) if full else tf.exp(log_sigma)
        loss = mixture_nll(y, tf.nn.softmax(logits), mu, sigma, epsilon=network.epsilon)
    if network.weight_decay == 0:
        return loss, loss
    return loss, loss + network.weight_decay * weight_decay_term(kernels)


def split_head(out, mixture_size, output_dim, covariance="diagonal"):
    """The "out" layer's units (``Network.head_units``) in the article's order: weight logits
    (..., K); means and log-sigmas (..., K) for D = 1 on a diagonal head, (..., K, D)
    otherwise; for a full head the log-factors (..., K, D, D) (``log_factor``) in place of
    the log-sigmas. ``out`` is (batch, units) or has more leading axes (..., units)."""
    k, d = mixture_size, output_dim
    if d == 1 and covariance == "diagonal" and out.shape.rank == 2:
        return tf.split(out, 3, 1)  # p, mu_out, sigma: logits, means, log-sigmas
    lead = tf.shape(out)[: out.shape.rank - 1]  # a static slice, as XLA needs
    p = out[..., :k]
    mu_out = tf.reshape(out[..., k : k + k * d], tf.concat([lead, [k, d]], 0))
    log_diag = tf.reshape(out[..., k + k * d : k + 2 * k * d], tf.concat([lead, [k, d]], 0))
    if covariance == "diagonal":
        return p, mu_out, log_diag
    below = out[..., k + 2 * k * d :]
    below = tf.reshape(below, tf.concat([lead, [k, d * (d - 1) // 2]], 0))
    return p, mu_out, log_factor(log_diag, below)


def build_mdn(
    mixture_size=12,
    hidden_units=(64, 128),
    learning_rate=0.01,
    epsilon=1e-5,
    stable_loss=False,
    weight_decay=0.0,
    activation="relu",
    input_dim=1,
    output_dim=1,
    covariance="diagonal",
):
    """The article's Mixture Density Network, in the default graph.

    x (None, 1) -> relu "hidden1" (64) -> relu "hidden2" (128) -> linear "out" (3K),
    split in the article's order into weights, means, sigmas:
    p_out = softmax(p), mu_out, sigma_out = exp(sigma); loss = ``mixture_nll``; Adam.

    Several inputs and outputs: x is (None, input_dim) and y (None, D) with D = output_dim.
    For D > 1 the "out" layer has K + 2KD units, split in the same order; ``mu_out`` and
    ``sigma_out`` are then (batch, K, D), each component a diagonal Gaussian.
    ``covariance="full"``: covariances L L^T, "out" of K + KD + KD(D+1)/2 units
    (``Network.head_units``), ``sigma_out`` the Cholesky factor L (batch, K, D, D), its diagonal
    exp'd, and ``log_sigma`` the log-factor (``log_factor``), which the losses take.

    Beyond the article: ``stable_loss=True`` trains on ``mixture_nll_stable`` instead
    (``epsilon`` is then unused), and ``weight_decay`` > 0 adds
    weight_decay * sum of squared kernel entries to the minimised objective (not to ``loss``);
    ``activation`` ("relu", "tanh" or a callable) replaces the hidden layers' relu.
    To run many epochs per ``Session.run``, see ``mdn_tf.engine``.
    """
    require_graph_mode("build_mdn")
    network = Network(
        mixture_size,
        hidden_units,
        learning_rate,
        epsilon,
        stable_loss,
        weight_decay,
        activation,
        input_dim,
        output_dim,
        covariance,
    )
    return network_graph(network)


def network_graph(network):
    """``build_mdn`` of a ``Network``: its placeholders, variables, head, loss and
    ``train_step`` in the default graph (an ``MDN``)."""
    require_graph_mode("build_mdn")
    x, y = _placeholders(network.input_dim, network.output_dim)

    # the article's layers, then the head: softmax weights, means, exp sigmas
    first_variable = len(tf1.trainable_variables())
    hidden = x
    for i, units in enumerate(network.hidden_units, start=1):
        hidden = dense(hidden, units=units, activation=network.activation, name=f"hidden{i}")
    out = dense(hidden, units=network.head_units, name="out")
    k, d = network.mixture_size, network.output_dim
    logits, mu_out, log_sigma = split_head(out, k, d, network.covariance)
    p_out = tf.nn.softmax(logits, name="prob_dist")
    full = network.covariance == "full"  # then the Cholesky factor, exp on its diagonal only
    if full:
        sigma_out = tf.identity(factor_from_log(log_sigma), "sigma")
    else:
        sigma_out = tf.exp(log_sigma, "sigma")

    nll = mixture_nll_stable(y, logits, mu_out, log_sigma)
    variables = tf1.trainable_variables()[first_variable:]  # kernel, bias of each layer
    layers = tuple(zip(variables[::2], variables[1::2]))
    loss, objective = training_objective(y, (logits, mu_out, log_sigma), variables[::2], network)
    train_step = tf1.train.AdamOptimizer(learning_rate=network.learning_rate).minimize(objective)
    return MDN(
        x=x,
        y=y,
        p_out=p_out,
        mu_out=mu_out,
        sigma_out=sigma_out,
        loss=loss,
        train_step=train_step,
        nll=nll,
        layers=layers,
        network=network,
        log_sigma=log_sigma,
    )
