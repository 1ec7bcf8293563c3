"""The data: the article's noisy sine-plus-line (and its swapped axes), Bishop's robot arm,
and two small real data sets shipped in ``mdn_tf/datasets`` (sources in their docstrings
and in ``mdn_tf/datasets/SOURCES.md``)."""

import gzip
from importlib.resources import files

import numpy as np

from mdn_tf import _checks

X_RANGE = (-10.5, 10.5)


def sine_curve(x):
    """The noise-free curve of the article: f(x) = 7 sin(0.75 x) + 0.5 x (any shape)."""
    x = _checks.numeric_array("x", x)
    return 7.0 * np.sin(0.75 * x) + 0.5 * x


def make_sine_data(n_samples=1000, seed=None):
    """Draw the article's data set.

    x ~ U(-10.5, 10.5),  y = 7 sin(0.75 x) + 0.5 x + r,  r ~ N(0, 1).

    Args:
        n_samples: number of points (the article's NSAMPLE = 1000).
        seed: int or None, for ``np.random.default_rng``; same seed, same data.

    Returns:
        (x_data, y_data): float32 arrays of shape (n_samples, 1).
    """
    n_samples = _checks.positive_int("n_samples", n_samples)
    seed = _checks.optional_seed("seed", seed)
    rng = np.random.default_rng(seed)
    x_data = rng.uniform(*X_RANGE, size=(n_samples, 1))
    r_data = rng.normal(size=(n_samples, 1))
    y_data = sine_curve(x_data) + r_data
    return x_data.astype(np.float32), y_data.astype(np.float32)


def swap_axes(x_data, y_data):
    """Return ``(y_data, x_data)``: the article's ``x_data, y_data = y_data, x_data``.

    The swapped problem is multi-valued: one input x has up to five branches of y.
    Both arrays must have the same number of rows.
    """
    _checks.same_length(
        x_data=_checks.column("x_data", x_data, finite=False),
        y_data=_checks.column("y_data", y_data, finite=False),
    )
    return y_data, x_data


# Bishop's two-link robot arm (Mixture Density Networks, 1994, section 7, eq. 56-57)
ARM_LENGTHS = (0.8, 0.2)  # L1, L2
ARM_THETA1 = (0.3, 1.2)
ARM_THETA2 = (np.pi / 2, 3 * np.pi / 2)


def arm_forward(angles):
    """End-effector position of Bishop's two-link arm for joint angles (theta1, theta2).

        x1 = L1 cos(theta1) - L2 cos(theta1 + theta2),
        x2 = L1 sin(theta1) - L2 sin(theta1 + theta2),   L1 = 0.8, L2 = 0.2.

    Args:
        angles: (..., 2) joint angles in radians: (n, 2), (2,) for one pose, or the
            (N, S, 2) samples of ``sample_from_mixture``.

    Returns:
        float64 array of the same shape: the positions.
    """
    arr = _checks.finite_array("angles", angles)
    if arr.shape[-1:] != (2,):
        raise ValueError(f"angles must have shape (..., 2), got {arr.shape}")
    theta1, theta2 = arr[..., 0], arr[..., 1]
    l1, l2 = ARM_LENGTHS
    return np.stack(
        [
            l1 * np.cos(theta1) - l2 * np.cos(theta1 + theta2),
            l1 * np.sin(theta1) - l2 * np.sin(theta1 + theta2),
        ],
        axis=-1,
    )


def make_arm_data(n_samples=1000, seed=None):
    """Draw Bishop's robot-arm data: joint angles and the positions they reach.

    theta1 ~ U(0.3, 1.2),  theta2 ~ U(pi/2, 3 pi/2),  positions = ``arm_forward(angles)``.
    The forward map (angles -> position) is single-valued; its inverse (position ->
    angles) has two solutions, elbow up and elbow down, over most of the reachable area.

    Args:
        n_samples: number of poses (Bishop used 1000 for training, 1000 for testing).
        seed: int or None, for ``np.random.default_rng``.

    Returns:
        (angles, positions): float32 arrays of shape (n_samples, 2).
    """
    n_samples = _checks.positive_int("n_samples", n_samples)
    seed = _checks.optional_seed("seed", seed)
    rng = np.random.default_rng(seed)
    angles = np.column_stack(
        [rng.uniform(*ARM_THETA1, size=n_samples), rng.uniform(*ARM_THETA2, size=n_samples)]
    )
    return angles.astype(np.float32), arm_forward(angles).astype(np.float32)


def arm_rms_error(angles, targets):
    """Bishop's score: RMS distance between targets and the positions the angles reach.

    sqrt( mean_n || arm_forward(angles_n) - targets_n ||^2 ),  angles and targets (n, 2).
    """
    angles = _checks.matrix("angles", angles, width=2)
    targets = _checks.matrix("targets", targets, width=2)
    _checks.same_length(angles=angles, targets=targets)
    return float(np.sqrt(np.mean(np.sum((arm_forward(angles) - targets) ** 2, axis=1))))


# a target column with at most one distinct value per this many rows is called discrete
ROWS_PER_DISTINCT_VALUE = 10


def discrete_columns(y):
    """The columns of y (n, D) that take at most max(1, n // 10) distinct values (ratings,
    counts, coarsely rounded readings): a list of (column, distinct values, grid step or
    None), the step when the values lie on a grid (every gap a whole multiple of the
    smallest)."""
    y = np.asarray(y)
    found = []
    for column in range(y.shape[1]):
        values = np.unique(y[:, column])
        if len(values) > max(1, len(y) // ROWS_PER_DISTINCT_VALUE):
            continue
        gaps = np.diff(values)
        step = float(gaps.min()) if len(gaps) else 0.0
        on_grid = step > 0 and np.allclose(gaps / step, np.round(gaps / step), atol=1e-6)
        found.append((column, len(values), step if on_grid else None))
    return found


DATASETS = files("mdn_tf") / "datasets"


def _csv_columns(name, x_column, y_column):
    """Two columns of a shipped CSV as float64 arrays (n, 1)."""
    table = np.genfromtxt(DATASETS / name, delimiter=",", names=True)
    return table[x_column][:, None], table[y_column][:, None]


def load_faithful():
    """Old Faithful: the waiting time before an eruption and the eruption's duration.

    272 eruptions of the Old Faithful geyser, Yellowstone (Härdle 1991, "Smoothing
    Techniques with Implementation in S"; R's ``datasets::faithful``). Given the wait, the
    duration is bimodal: short eruptions (about 2 min) follow short waits and long ones
    (about 4.5 min) long waits, with both in between; the classic example of a conditional
    density. Durations are rounded, many to whole seconds.

    Returns:
        (waiting, eruptions): float64 arrays (272, 1), in minutes.
    """
    return _csv_columns("faithful.csv", "waiting", "eruptions")


def load_mcycle():
    """The motorcycle crash data: head acceleration against time after a simulated impact.

    133 measurements from crash-helmet tests (Silverman 1985, JRSS B 47, 1-52; R's
    ``MASS::mcycle``). The noise is strongly heteroscedastic: near zero before the impact,
    about 25 g during the oscillation after it; several readings share a time.

    Returns:
        (times, accel): float64 arrays (133, 1), in milliseconds and in g.
    """
    return _csv_columns("mcycle.csv", "times", "accel")


# the UCI regression benchmark's tables shipped with the package (datasets/uci/SOURCES.md)
UCI_TABLES = ("concrete", "energy", "power-plant", "protein-tertiary-structure", "wine-quality-red")


def _uci_file(name, file):
    if name not in UCI_TABLES:
        raise ValueError(f"name must be one of {UCI_TABLES}, got {name!r}")
    return DATASETS / "uci" / name / file


def load_uci(name):
    """A table of the UCI regression benchmark, as the field's papers read it.

    Hernández-Lobato & Adams (2015) and the papers since (MC dropout, Deep Ensembles,
    NGBoost, ...) report test NLL on these tables over the splits ``uci_splits`` gives.
    Shipped: concrete (1030 x 8, compressive strength in MPa), energy (768 x 8, heating
    load), power-plant (9568 x 4, electrical output in MW), protein-tertiary-structure
    (45 730 x 9, RMSD) and wine-quality-red (1599 x 11, a quality score: integers 3 to 8);
    from the UCI Machine Learning Repository, CC BY 4.0 (datasets/uci/SOURCES.md).

    Returns:
        (x (n, d), y (n, 1)): float64 arrays, the table's feature and target columns.
    """
    with gzip.open(_uci_file(name, "data.txt.gz"), "rt") as f:
        table = np.loadtxt(f)
    features = np.loadtxt(_uci_file(name, "index_features.txt"), dtype=int, ndmin=1)
    target = int(_uci_file(name, "index_target.txt").read_text())
    return table[:, features], table[:, [target]]


def uci_splits(name):
    """The table's standard splits: 90% train, 10% test, 20 of them (5 for protein).

    Made as the papers' code made them, with numpy's legacy generator seeded 1:
    ``choice(range(n), n, replace=False)`` per split, the first round(0.9 n) indices
    training and the rest testing (without touching numpy's global generator).

    Returns:
        list of (train_index, test_index) int arrays.
    """
    n_splits = int(_uci_file(name, "n_splits.txt").read_text())
    with gzip.open(_uci_file(name, "data.txt.gz"), "rt") as f:
        n = sum(1 for line in f if line.strip())
    rng = np.random.RandomState(1)
    end = round(n * 9.0 / 10)
    splits = []
    for _ in range(n_splits):
        order = rng.choice(range(n), n, replace=False)
        splits.append((order[:end], order[end:]))
    return splits
