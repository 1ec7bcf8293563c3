"""Recipes: how ``fit_mdn`` trains (network, loss, optimiser, epochs, early stopping,
ensembling, engine), the named ones in ``RECIPES``, and ``default_recipe(n)``."""

from dataclasses import dataclass, fields, replace

from mdn_tf import _checks
from mdn_tf.graph import Network

# "stacked": every member in one XLA program (mdn_tf.stacked); "graph": each member on
# its own TF1 graph loop (mdn_tf.engine.graph_loop), bit-identical to the article's loop.
ENGINES = ("stacked", "graph")


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
    ``engine`` is how the epochs run: "graph" (each member on ``graph_loop``: ordinary TF1
    ops, bit-identical to the article's ``sess.run(train_step)`` loop; the default, so
    that ``Recipe()`` is the article) or "stacked" (every member in one XLA-compiled
    program, ``mdn_tf.stacked``: the same steps up to float rounding, and faster for an
    ensemble (docs/performance.md); every named recipe but "article").
    ``batch_size`` None trains on the full batch each epoch; an int B makes an epoch one
    pass over the shuffled training points in n // B minibatches of B (the n % B left over
    sit that epoch out; a fresh shuffle each epoch), and the epoch's loss the mean of its
    steps'. ``covariance`` "full" gives each component a full covariance (``build_mdn``'s
    ``covariance``; with ``standardize`` the factors map back as L' = diag(scale) L), for
    outputs that are correlated given x; "diagonal" (the default) is the article's head.

    ``stages`` > 1 lets each member lower its noise while that helps (noise that suits
    noisy data blurs precise data): when a member's patience runs out and the stage
    improved its best check, it goes on from its best weights with both noises times
    ``stage_noise`` and a fresh Adam, up to ``stages`` stages in ``epochs`` epochs; a stage
    that lowers its best check by less than 0.01 nats is its last. ``stage_learning_rate``
    multiplies the learning rate at each stage (1 keeps it). ``calibrated_checks`` judges
    each check by the member's validation NLL at its best sigma factor (of 25 from 1/4 to
    4), the way calibration will serve it, rather than as trained (noise widens sigmas, a
    lower noise narrows them); the fitted member's sigmas are then scaled by the factor
    that fits its own held-out points best, before the ensemble's out-of-bag factor. Both
    need the stacked engine; ``calibrated_checks`` needs ``calibrate_sigma``.
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
    covariance: str = "diagonal"
    stages: int = 1
    stage_noise: float = 0.25
    stage_learning_rate: float = 1.0
    calibrated_checks: bool = False

    def __post_init__(self):
        self.network()  # the network's fields, checked where Network checks them
        for name in ("epochs", "check_every", "patience", "ensemble", "stages"):
            _checks.positive_int(name, getattr(self, name))
        for name in ("input_noise", "target_noise", "stage_noise"):
            _checks.non_negative_float(name, getattr(self, name))
        _checks.positive_float("stage_learning_rate", self.stage_learning_rate)
        for name in ("calibrate_sigma", "standardize", "calibrated_checks"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}"
            )
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.batch_size is not None:
            _checks.positive_int("batch_size", self.batch_size)
        if self.calibrate_sigma and self.validation_fraction == 0:
            raise ValueError("calibrate_sigma needs held-out points: set validation_fraction > 0")
        if self.stages > 1 and self.validation_fraction == 0:
            raise ValueError("stages > 1 needs validation checks: set validation_fraction > 0")
        for name, value in (
            ("stages > 1", self.stages > 1),
            ("calibrated_checks", self.calibrated_checks),
        ):
            if value and self.engine != "stacked":
                raise ValueError(f"{name} needs engine='stacked', got engine={self.engine!r}")
        if self.calibrated_checks and not self.calibrate_sigma:
            raise ValueError("calibrated_checks needs calibrate_sigma=True")

    def network(self, input_dim=1, output_dim=1):
        """The ``Network`` the recipe trains on data of input_dim inputs and output_dim
        outputs: the recipe's values of the network's fields, the others (``epsilon``) as
        ``Network``'s defaults."""
        shared = {f.name: getattr(self, f.name) for f in fields(Network) if hasattr(self, f.name)}
        return Network(**shared, input_dim=input_dim, output_dim=output_dim)


RECIPES = {
    # fit_mdn(x, y) with no recipe named: for data of any scale and kind, noisy or precise
    # (docs/evaluation.md, "A default for your own data"): standardized data, noise
    # regularisation in standard deviations that each member lowers stage by stage while
    # its checks improve, the stable loss, early stopping on a 20% split judged at each
    # member's best sigma factor, an ensemble of 5 members on different splits, sigmas
    # calibrated per member and out of bag, and minibatches of 1000 above 1000 points
    "default": Recipe(
        engine="stacked",
        stable_loss=True,
        learning_rate=0.005,
        epochs=4000,
        weight_decay=1e-4,
        validation_fraction=0.2,
        patience=30,
        ensemble=5,
        input_noise=0.05,
        target_noise=0.05,
        stages=4,
        stage_noise=0.25,
        calibrate_sigma=True,
        calibrated_checks=True,
        standardize=True,
        batch_size=1000,
    ),
    # the article exactly: 12 components, 64/128 relu, clamped NLL, Adam 0.01, 2500 epochs,
    # on the (default) graph loop, so that fit_mdn(recipe="article", seed=SEED) retraces
    # notebook 3 bit for bit
    "article": Recipe(),
    # what held-out NLL rewarded on this problem (docs/evaluation.md): the stable loss,
    # noise regularisation, light weight decay, early stopping on a 20% split, an
    # ensemble of 8 members on different splits, and sigmas calibrated out of bag
    "tuned": Recipe(
        engine="stacked",
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
    # loss, early stopping on a 5% split checked every pass (on 100 000 points of the
    # article's problem it comes within 0.02 nats of the bound: docs/evaluation.md)
    "large": Recipe(
        engine="stacked",
        stable_loss=True,
        learning_rate=0.003,
        epochs=300,
        batch_size=1000,
        validation_fraction=0.05,
        check_every=1,
        patience=30,
    ),
    # Bishop's robot arm (notebook 5): his MDN of 2 kernels and 10 tanh units trained with
    # BFGS; here 2 components, 20 tanh units, full-batch Adam on standardized data, and three
    # such networks averaged: one alone lands in a poorer optimum on about one seed in eight
    # (RMS 0.0126 against 0.004), and the average's most probable solution follows the others
    "arm": Recipe(
        engine="stacked",
        ensemble=3,
        mixture_size=2,
        hidden_units=(20,),
        activation="tanh",
        learning_rate=0.01,
        epochs=5000,
        stable_loss=True,
        standardize=True,
    ),
}


def default_recipe(n, output_dim=1):
    """The default recipe for n training points with ``output_dim`` outputs:
    ``RECIPES["default"]`` up to 1000 points and one output.

    Above 1000 points, a validation check every max(1, round(10 000 / n)) epochs (an epoch
    is then several minibatches, and patience counts checks) and starting noise on x and y
    shrunk as 0.05 (1000 / n)^(1/5), the rate of a kernel density's bandwidth: with more
    points there is less to smooth (docs/evaluation.md has what it did on 100 000 points).

    With several outputs, full covariances (``covariance="full"``): on the suite's two
    problems with two outputs, the noisy arm and the correlated problem, they beat the
    diagonal head on every seed (docs/evaluation.md). With one output the two heads are
    the same network, and the diagonal one keeps the (N, K) layout.
    """
    n = _checks.positive_int("n", n)
    output_dim = _checks.positive_int("output_dim", output_dim)
    base = RECIPES["default"]
    if output_dim > 1:
        base = replace(base, covariance="full")
    if n <= 1000:
        return base
    noise = base.input_noise * (1000 / n) ** 0.2
    return replace(
        base,
        check_every=max(1, round(10_000 / n)),
        input_noise=noise,
        target_noise=noise,
    )
