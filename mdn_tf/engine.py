"""Training machinery for ``build_mdn``'s network: many Adam epochs per ``Session.run``.

``Engine`` runs the epochs in the package's one compiled trainer (``mdn_tf.stacked``, the
program ``fit_mdn`` trains with) as a one-member group: forward pass, loss, gradients and
Adam's update fuse into a few XLA kernels, and one call runs ``epochs_per_run`` epochs.
What the network's ``train_step`` does per epoch, up to float rounding; the trained
weights land in the MDN's own variables, so ``sess.run(mdn.p_out, ...)``, ``mdn.nll`` and
checkpoints see them. Beyond the article it can add fresh Gaussian noise to the inputs and
targets at every epoch (noise regularisation), drawn as ``fit_mdn`` draws it.

``graph_loop`` is the plain TF1 alternative: the same steps in a ``tf.while_loop`` of
ordinary ops, bit-identical to as many ``train_step`` runs (and slower than the engine).

Both work in TF1 graph mode, under ``disable_eager_execution`` or ``disable_v2_behavior``::

    mdn = mdn_tf.build_mdn()
    engine = mdn_tf.engine.Engine(mdn)  # before the initializer, or run engine.initializer
    sess.run(tf.compat.v1.global_variables_initializer())
    losses = engine.train(sess, x_data, y_data, epochs=2500)  # (2500,) training losses
"""

import numpy as np

from mdn_tf import _checks, stacked
from mdn_tf._tf import require_graph_mode, tf, tf1
from mdn_tf.graph import MDN, resolve_activation, split_head, training_objective

_NEVER = np.iinfo(np.int32).max  # patience that never runs out: the engine has no checks


class Engine:
    """Adam epochs of a ``build_mdn`` network, ``epochs_per_run`` of them per compiled call.

    Each epoch is one full-batch step on (x, y) as the network's ``train_step`` takes it:
    the same loss (clamped or stable), weight decay, learning rate and Adam (beta1 0.9,
    beta2 0.999, eps 1e-8). With ``input_noise`` or ``target_noise`` > 0, each epoch
    trains on x + input_noise * z and y + target_noise * z' with fresh standard normal
    z, z' drawn from ``numpy.random.default_rng(seed)``, x's then y's, epoch after epoch
    (``stacked.BatchStream``, the stream ``fit_mdn`` gives a member of that seed).

    The engine keeps Adam's moments and beta powers in variables of its own (scope
    "engine"); ``initializer`` resets them, and ``reset`` starts a new run with another
    seed (Adam's state and the noise stream new), so that one engine trains network after
    network (load their weights first) on code compiled once: the first call compiles,
    and later calls with the same number of points reuse it. Each call feeds
    ``epochs_per_run`` epochs' inputs, as many copies of x: memory bounds it.
    """

    def __init__(self, mdn, epochs_per_run=10, input_noise=0.0, target_noise=0.0, seed=0):
        require_graph_mode("Engine")
        if not isinstance(mdn, MDN) or mdn.network is None:
            raise TypeError(f"mdn must be an MDN from build_mdn, got {type(mdn).__name__}")
        self.epochs_per_run = _checks.positive_int("epochs_per_run", epochs_per_run)
        self.input_noise = _checks.non_negative_float("input_noise", input_noise)
        self.target_noise = _checks.non_negative_float("target_noise", target_noise)
        self._noise = np.random.default_rng(_checks.non_negative_int("seed", seed))
        self.mdn, network = mdn, mdn.network
        weights = [w for layer in mdn.layers for w in layer]
        with mdn.x.graph.as_default(), tf1.variable_scope(None, default_name="engine"):
            self.xs = tf1.placeholder(tf.float32, (1, None, None, network.input_dim), "xs")
            self.ys = tf1.placeholder(tf.float32, (1, None, None, network.output_dim), "ys")
            self.control = tf1.placeholder(tf.int32, (5,), name="control")
            moments = [
                [self._zeros(f"{name}{i}", (1, *w.shape)) for i, w in enumerate(weights)]
                for name in ("m", "v")
            ]
            powers = [self._zeros(name, (1,), 1.0) for name in ("beta1_power", "beta2_power")]
            self.initializer = tf1.variables_initializer([*moments[0], *moments[1], *powers])
            self.losses = self._step(network, weights, moments, powers)

    @staticmethod
    def _zeros(name, shape, value=0.0):
        return tf1.get_variable(
            name, shape, tf.float32, tf1.constant_initializer(value), trainable=False
        )

    def _step(self, network, weights, moments, powers):
        """The program's call on the variables' values, written back: the losses (epochs,)."""
        params = [tf.expand_dims(w, 0) for w in weights]
        reads = [tf.identity(v) for v in (*moments[0], *moments[1], *powers)]
        count = len(params)
        m, v, (beta1_power, beta2_power) = reads[:count], reads[count:-2], reads[-2:]
        adam = stacked.AdamState(params, m, v, beta1_power, beta2_power)
        learning_rate, best_val = tf.fill([1], network.learning_rate), tf.fill([1], np.inf)
        state = stacked.GroupState(adam, learning_rate, params, best_val, tf.zeros([1], tf.int32))
        # no checks and no monitor: one row of x and y stands in for their rows
        rows = self.xs[:, 0, :1], self.ys[:, 0, :1], self.xs[0, 0, :1], self.ys[0, 0, :1]
        program = stacked.program(network)
        epochs, log, _, _, _, new = program(
            self.xs, self.ys, *rows, tf.zeros([1]), self.control, state
        )
        targets = [*weights, *moments[0], *moments[1], *powers]
        a = new.adam
        values = [*[w[0] for w in a.params], *a.m, *a.v, a.beta1_power, a.beta2_power]
        updates = [t.assign(value) for t, value in zip(targets, values)]
        with tf.control_dependencies(updates):
            # the losses of the epochs run, fetched once the weights are written back
            return tf.identity(log[:epochs, 0], name="losses")

    def reset(self, sess, seed):
        """Start a new run in ``sess``: Adam's state new, and the noise stream keyed by
        ``seed``. The network's weights are left as they are."""
        self._noise = np.random.default_rng(_checks.non_negative_int("seed", seed))
        sess.run(self.initializer)

    def train(self, sess, x, y, epochs):
        """Run ``epochs`` epochs on (x (n, input_dim), y (n, D)) in ``sess``; returns the
        (epochs,) training losses, each on the weights before that epoch's step."""
        network = self.mdn.network
        x = _checks.matrix("x", x, width=network.input_dim).astype(np.float32)
        y = _checks.matrix("y", y, width=network.output_dim).astype(np.float32)
        _checks.same_length(x=x, y=y)
        epochs = _checks.positive_int("epochs", epochs)
        stream = stacked.BatchStream(x, y, None, self.input_noise, self.target_noise, 0)
        stream.noise_rng = self._noise  # the engine's stream goes on across calls
        losses = []
        # every call feeds epochs_per_run epochs' rows, the last call's unused ones zero,
        # so that every call runs the one program compiled for that shape
        xs = np.zeros((1, self.epochs_per_run, *x.shape), np.float32)
        ys = np.zeros((1, self.epochs_per_run, *y.shape), np.float32)
        for start in range(0, epochs, self.epochs_per_run):
            count = min(self.epochs_per_run, epochs - start)
            xs[0, :count], ys[0, :count] = stream.take(count)
            control = np.array([1, count, 1, _NEVER, 0], np.int32)
            feed = {self.xs: xs, self.ys: ys, self.control: control}
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
    network = mdn.network
    activation = resolve_activation(network.activation)
    weights = [w for layer in mdn.layers for w in layer]
    with mdn.x.graph.as_default(), tf1.name_scope("graph_loop"):
        xs = tf1.placeholder(tf.float32, (None, None, network.input_dim), name="xs")
        ys = tf1.placeholder(tf.float32, (None, None, network.output_dim), name="ys")
        optimizer = tf1.train.AdamOptimizer(learning_rate=network.learning_rate)

        def step_loss(x, y):
            h = x
            for i, (kernel, bias) in enumerate(mdn.layers):  # the ops dense builds
                h = tf.nn.bias_add(tf.matmul(h, kernel), bias)
                if i < len(mdn.layers) - 1 and activation is not None:
                    h = activation(h)
            k, d = network.mixture_size, network.output_dim
            head = split_head(h, k, d, network.covariance)
            return training_objective(y, head, weights[::2], network)

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
