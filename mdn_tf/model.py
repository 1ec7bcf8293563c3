"""A fitted MDN: its weights and scaling as arrays, the questions it answers, save and load.

``FittedMDN`` holds no TensorFlow state: ``predict`` is the network's forward pass in numpy
(float64, every member at once), so a fitted or loaded model needs no graph or session.
"""

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from mdn_tf import _checks, saving
from mdn_tf.graph import Network, tril_index
from mdn_tf.mixture import (
    held_out_nll,
    mixture_cdf,
    mixture_condition,
    mixture_covariance,
    mixture_log_likelihood,
    mixture_marginal,
    mixture_mode,
    mixture_moments,
    mixture_quantile,
    sample_from_mixture,
)
from mdn_tf.recipes import Recipe

PREDICT_ROWS = 4096  # rows per block of predict's forward pass (bounds its memory)


def _activate(activation, h):
    """The hidden layers' activation on a float64 array: "relu", "tanh", None, or a
    TensorFlow callable (run once in a graph of its own)."""
    if activation == "relu":
        return np.maximum(h, 0.0)
    if activation == "tanh":
        return np.tanh(h)
    if activation is None:
        return h
    from mdn_tf._tf import tf, tf1  # a callable activation: evaluate it with TensorFlow

    with tf.Graph().as_default() as graph, tf1.Session(graph=graph) as sess:
        return sess.run(activation(tf.constant(h)))


def member_mixtures(weights, network, x):
    """Each member's mixture at x (n, input_dim), in its training units, as float64:
    (p (M, n, K), mu (M, n, K, D), sigma (M, n, K, D)) for M members whose weights are
    ``weights[m] = [kernel, bias, kernel, ...]``; for ``covariance="full"`` the Cholesky
    factors (M, n, K, D, D) in sigma's place.

    The forward pass of ``build_mdn``'s network, h = act(h W + b) per hidden layer, then
    the head split in the article's order: p = softmax(logits), mu, sigma = exp(log sigma)
    (a factor's diagonal exp'd, the entries below it as they are), the exp in float64 (no
    sigma rounds to 0 far from the data).
    """
    k, d = network.mixture_size, network.output_dim
    layers = len(weights[0]) // 2
    stacked = [np.stack([w[i] for w in weights]).astype(np.float64) for i in range(2 * layers)]
    h = np.broadcast_to(np.asarray(x, np.float64), (len(weights), *np.shape(x)))
    for i in range(layers):
        h = np.matmul(h, stacked[2 * i]) + stacked[2 * i + 1][:, None, :]
        if i < layers - 1:
            h = _activate(network.activation, h)
    logits = h[..., :k]
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    shape = (*h.shape[:2], k, d)
    mu = h[..., k : k + k * d].reshape(shape)
    sigma = np.exp(h[..., k + k * d : k + 2 * k * d].reshape(shape))
    if network.covariance == "full":
        below = h[..., k + 2 * k * d :].reshape((*shape[:-1], d * (d - 1) // 2))
        row = np.concatenate([np.zeros((*shape[:-1], 1)), sigma, below], axis=-1)
        sigma = row[..., tril_index(d)].reshape((*shape, d))  # (M, n, K, D, D)
    return p, mu, sigma


def scale_sigmas(weights, network, factor):
    """One member's weights [kernel, bias, ...] with every sigma of its mixture multiplied
    by ``factor`` > 0, folded into its out layer: log c added to the log-sigma units (a
    factor's log-diagonal), and the units below a factor's diagonal multiplied by c."""
    k, d = network.mixture_size, network.output_dim
    start = k + k * d  # the log-sigma units follow the weight logits and the means
    kernel, bias = weights[-2].copy(), weights[-1].copy()
    bias[start : start + k * d] += np.float32(np.log(factor))
    kernel[:, start + k * d :] *= np.float32(factor)
    bias[start + k * d :] *= np.float32(factor)
    return [*weights[:-2], kernel, bias]


class _Questions:
    """The questions a mixture p(y | x) answers, x and y in the data's units, with the
    shapes of ``mdn_tf.mixture``'s functions. ``_mixture(x, given)`` gives the mixture;
    ``given`` holds a conditional view's given outputs (n, |B|) and is None otherwise."""

    def log_prob(self, x, y, *, given=None):
        """log p(y | x[, given]) per row: x (n, input_dim), y (n, D) -> (n,)."""
        return mixture_log_likelihood(*self._mixture(x, given), y)

    def nll(self, x, y, *, given=None):
        """Mean negative log-likelihood of y: -mean(log_prob(x, y)), a float."""
        return held_out_nll(*self._mixture(x, given), y)

    def sample(
        self, x, samples_per_x=1, temperature=1.0, sigma_temperature=1.0, rng=None, *, given=None
    ):
        """Draws from p(y | x[, given]): (n, samples_per_x) for D = 1, (n, samples_per_x, D)
        else; the temperatures as ``sample_from_mixture``'s."""
        return sample_from_mixture(
            *self._mixture(x, given),
            samples_per_x=samples_per_x,
            rng=rng,
            temperature=temperature,
            sigma_temperature=sigma_temperature,
        )

    def mode(self, x, *, given=None):
        """The most probable y at each x (``mixture_mode``): (n, D)."""
        return mixture_mode(*self._mixture(x, given))

    def mean(self, x, *, given=None):
        """E[y | x[, given]], the mixture's own mean: (n, D)."""
        return mixture_moments(*self._mixture(x, given))[0]

    def std(self, x, *, given=None):
        """The standard deviation of y, per output dimension: (n, D)."""
        return mixture_moments(*self._mixture(x, given))[1]

    def cov(self, x, *, given=None):
        """The covariance matrix of y (``mixture_covariance``): (n, D, D)."""
        return mixture_covariance(*self._mixture(x, given))

    def cdf(self, x, y, *, given=None):
        """P(Y <= y | x[, given]) for one output dimension: (n,)."""
        return mixture_cdf(*self._mixture(x, given), y)

    def quantile(self, x, q, *, given=None):
        """The q-quantiles of y for one output dimension: (n, len(q))."""
        return mixture_quantile(*self._mixture(x, given), q)


def _weight_names(member, layers):
    """weights.npz's names of a member's weights in order: m<member>_l<j>_kernel and
    m<member>_l<j>_bias for each layer j."""
    return [f"m{member}_l{j}_{part}" for j in range(layers) for part in ("kernel", "bias")]


@dataclass
class FittedMDN(_Questions):
    """A trained MDN (or ensemble of MDNs) and how its training went.

    ``predict(x)`` gives the mixture for inputs x (n, input_dim) as numpy
    (p_val, mu_val, sigma_val): weights (n, K * ensemble), means and sigmas (n, K * ensemble)
    for one output dimension or (n, K * ensemble, D); ``log_prob``, ``nll``, ``sample``,
    ``mode``, ``mean``, ``std``, ``cov``, ``cdf`` and ``quantile`` answer questions about
    it (``_Questions``). ``loss_history`` is the training loss per epoch (mean over
    members, over the epochs all members ran); ``val_history`` the members' validation NLL
    per check; ``monitor_history`` (epoch, exact NLL) pairs on the ``monitor`` data;
    ``best_epochs`` the epoch each member's weights come from; ``stages`` the noise stages
    each member trained (``Recipe.stages``); ``sigma_scale`` the factor ``predict``
    applies to every sigma (1 unless the recipe calibrates); ``train_s`` seconds.
    Validation and monitor NLLs are in the data's units, also when the recipe standardizes.
    """

    recipe: Recipe
    weights: list = field(repr=False)  # per member: [kernel, bias, ...] float32 arrays
    network: Network = field(repr=False)
    loss_history: np.ndarray = field(repr=False)
    val_history: list = field(repr=False)
    monitor_history: np.ndarray = field(repr=False)
    best_epochs: list = field(default_factory=list)
    stages: list = field(default_factory=list)
    sigma_scale: float = 1.0
    train_s: float = 0.0
    _scaling: tuple = field(default=None, repr=False)  # (x_shift, x_scale, y_shift, y_scale)

    def save(self, path, overwrite=False):
        """Write the model to the folder ``path`` (JSON and .npz, no pickle; see
        ``mdn_tf.saving``); ``mdn_tf.load_mdn(path)`` reads it back. Returns the path."""
        path = saving.check_path(path)
        network = self.network.to_json()  # TypeError for a callable activation
        arrays = {
            name: np.asarray(weight, np.float32)
            for i, member in enumerate(self.weights)
            for name, weight in zip(_weight_names(i, len(member) // 2), member)
        }
        scaling = None if self._scaling is None else [np.asarray(a).tolist() for a in self._scaling]
        model = {
            "recipe": dataclasses.asdict(self.recipe),
            "settings": network,
            "members": len(self.weights),
            "layers": len(self.weights[0]) // 2,
            "scaling": scaling,
            "sigma_scale": float(self.sigma_scale),
            "loss_history": np.asarray(self.loss_history, dtype=float).tolist(),
            "best_epochs": [int(e) for e in self.best_epochs],
            "stages": [int(s) for s in self.stages],
            "train_s": float(self.train_s),
        }
        return saving.write(path, model, arrays, overwrite=overwrite)

    def _mixture(self, x, given):
        if given is not None:
            raise TypeError("a model's questions take no given values: see condition(given_dims)")
        return self.predict(x)

    def marginal(self, dims):
        """The model's answers about the outputs ``dims`` alone, the others integrated
        out (``mixture_marginal``): a ``MixtureView``, e.g. ``fitted.marginal([1]).cdf(x, y1)``."""
        return MixtureView(self, dims=dims)

    def condition(self, given_dims):
        """The model's answers about the other outputs, given the outputs ``given_dims``
        (``mixture_condition``): a ``MixtureView`` whose questions take the given values
        as ``given=`` (n, len(given_dims)), e.g.
        ``fitted.condition([0]).quantile(x, [0.1, 0.9], given=y0)``."""
        return MixtureView(self, given_dims=given_dims)

    def predict(self, x):
        """Mixture parameters at inputs x (n, input_dim), or (n,) for one input: float64
        arrays p (n, K * members), mu and sigma (n, K * members) for D = 1 or
        (n, K * members, D); members' components side by side, each weight divided by
        the number of members. A full-covariance model returns (p, mu, scale_tril): mu
        (n, K * members, D) and the Cholesky factors (n, K * members, D, D), any D.

        One forward pass of every member in numpy (``member_mixtures``), in float64 from
        the float32 weights; sigma is exp(log_sigma) in float64: far from the data a float32
        ``exp`` can round a sigma to 0, a density no question could be asked of."""
        x = _checks.matrix("x", x, width=self.network.input_dim)
        if self._scaling is not None:
            x = (x - self._scaling[0]) / self._scaling[1]
        parts = [
            member_mixtures(self.weights, self.network, x[i : i + PREDICT_ROWS])
            for i in range(0, max(len(x), 1), PREDICT_ROWS)
        ]
        p, mu, sigma = (np.concatenate(a, axis=1) for a in zip(*parts))  # (M, n, K, ...)
        m, n, k, d = mu.shape
        full = sigma.ndim == 5
        p_val = p.transpose(1, 0, 2).reshape(n, m * k) / m
        mu_val = mu.transpose(1, 0, 2, 3).reshape(n, m * k, d)
        sigma_val = np.moveaxis(sigma, 0, 1).reshape(n, m * k, *sigma.shape[3:])
        sigma_val = sigma_val * self.sigma_scale
        if self._scaling is not None:  # back to the data's units: L' = diag(scale) L
            y_shift, y_scale = self._scaling[2:]
            mu_val = mu_val * y_scale + y_shift
            sigma_val = sigma_val * (np.asarray(y_scale)[:, None] if full else y_scale)
        if d == 1 and not full:
            return p_val, mu_val[:, :, 0], sigma_val[:, :, 0]
        return p_val, mu_val, sigma_val


class MixtureView(_Questions):
    """Some outputs of a fitted model: a marginal (``FittedMDN.marginal(dims)``) or a
    conditional (``FittedMDN.condition(given_dims)``) mixture, which answers the same
    questions as the model, in the same layout and the data's units.

    A conditional view's questions take the given outputs' values as ``given`` (n, |B|),
    one row per row of x (``(n,)`` for one); a marginal view takes none. Outputs left:
    the ``dims`` in their order, or the outputs not given in increasing order.
    """

    def __init__(self, fitted, dims=None, given_dims=None):
        d = fitted.network.output_dim
        self.fitted = fitted
        self.dims = None if dims is None else _checks.dims("dims", dims, d)
        self.given_dims = None if given_dims is None else _checks.dims("given_dims", given_dims, d)
        if self.given_dims is not None and len(self.given_dims) == d:
            raise ValueError(
                f"given_dims must leave at least one of the {d} output(s), got {list(given_dims)}"
            )

    def predict(self, x, given=None):
        """The mixture (p, mu, sigma or factors) of the outputs left, at x (and given)."""
        mixture = self.fitted.predict(x)
        if self.given_dims is None:
            if given is not None:
                raise TypeError("a marginal view takes no given values: given must be None")
            return mixture_marginal(*mixture, self.dims)
        if given is None:
            raise TypeError(
                f"given must hold the values of outputs {list(self.given_dims)}, "
                f"(n, {len(self.given_dims)}), for a conditional view"
            )
        return mixture_condition(*mixture, self.given_dims, given)

    _mixture = predict


def load_mdn(path):
    """The FittedMDN saved in the folder ``path``: the same ``predict`` as the one saved.

    Builds no graph: the model is its arrays. Validation and monitor histories are not
    saved. Folders of format version 1 without a ``covariance`` setting load as diagonal.
    """
    path = saving.check_path(path)
    model, arrays = saving.read(path)
    file = path / saving.MODEL_FILE
    try:
        recipe = Recipe(
            **{**model["recipe"], "hidden_units": tuple(model["recipe"]["hidden_units"])}
        )
        network = Network.from_json(model["settings"])
        members = _checks.positive_int("members", model["members"])
        layers = _checks.positive_int("layers", model["layers"])
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"{file}: {err}") from None
    shapes = network.weight_shapes
    if len(shapes) // 2 != layers:
        raise ValueError(f"{file}: {layers} layers, but its settings build {len(shapes) // 2}")
    weights = []
    for i in range(members):
        names = _weight_names(i, layers)
        for name, shape in zip(names, shapes):
            if name not in arrays or arrays[name].shape != shape:
                raise ValueError(
                    f"{path / saving.WEIGHTS_FILE}: {name} is missing or has the wrong shape"
                )
        weights.append([arrays[name].astype(np.float32) for name in names])
    scaling = model["scaling"]
    return FittedMDN(
        recipe=recipe,
        weights=weights,
        network=network,
        loss_history=np.asarray(model.get("loss_history", []), dtype=float),
        val_history=[],
        monitor_history=np.zeros((0, 2)),
        best_epochs=list(model.get("best_epochs", [])),
        stages=list(model.get("stages", [])),
        sigma_scale=float(model["sigma_scale"]),
        train_s=float(model.get("train_s", 0.0)),
        _scaling=None if scaling is None else tuple(np.asarray(a) for a in scaling),
    )
