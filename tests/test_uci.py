"""The UCI tables shipped with the package, their standard splits, the benchmark command,
and the warning for discrete targets."""

import dataclasses
import json
import warnings

import numpy as np
import pytest

import mdn_tf
from mdn_tf import uci
from mdn_tf.data import UCI_TABLES, discrete_columns


@pytest.mark.parametrize(
    ("name", "shape", "first_row"),
    [
        ("energy", (768, 8), [0.98, 514.5, 294.0, 110.25, 7.0, 2, 0.0, 0, 15.55]),
        ("wine-quality-red", (1599, 11),
         [7.4, 0.7, 0, 1.9, 0.076, 11, 34, 0.9978, 3.51, 0.56, 9.4, 5]),
    ],
)  # fmt: skip
def test_load_uci_reads_the_features_and_the_target(name, shape, first_row):
    x, y = mdn_tf.load_uci(name)
    assert x.shape == shape and y.shape == (shape[0], 1)
    np.testing.assert_array_equal(np.concatenate([x[0], y[0]]), first_row)


def test_every_table_loads_with_its_splits():
    sizes = {"concrete": 1030, "power-plant": 9568, "protein-tertiary-structure": 45730}
    for name in UCI_TABLES:
        x, y = mdn_tf.load_uci(name)
        assert np.all(np.isfinite(x)) and np.all(np.isfinite(y))
        assert len(x) == sizes.get(name, len(x))
        splits = mdn_tf.uci_splits(name)
        assert len(splits) == (5 if name.startswith("protein") else 20)


def test_splits_are_the_papers_legacy_global_generator_ones():
    # the papers' code: np.random.seed(1) then choice per split, on the global generator
    # (the function must give the same without touching it)
    n = len(mdn_tf.load_uci("concrete")[0])
    legacy = np.random  # the papers' generator, on purpose
    saved = legacy.get_state()  # noqa: NPY002
    try:
        legacy.seed(1)  # noqa: NPY002
        want = [legacy.choice(range(n), n, replace=False) for _ in range(20)]  # noqa: NPY002
        marker = legacy.random()  # noqa: NPY002
        legacy.seed(1)  # noqa: NPY002
        for _ in range(20):
            legacy.choice(range(n), n, replace=False)  # noqa: NPY002
        splits = mdn_tf.uci_splits("concrete")
        assert legacy.random() == marker  # noqa: NPY002 (the global generator was left alone)
    finally:
        legacy.set_state(saved)  # noqa: NPY002
    end = round(n * 0.9)
    for (train, test), order in zip(splits, want):
        np.testing.assert_array_equal(train, order[:end])
        np.testing.assert_array_equal(test, order[end:])
        assert len(np.union1d(train, test)) == n and len(np.intersect1d(train, test)) == 0


def test_load_uci_names_the_tables():
    with pytest.raises(ValueError, match="name must be one of"):
        mdn_tf.load_uci("boston")


def test_discrete_columns_finds_ratings_and_counts_not_rounded_measurements():
    _, wine = mdn_tf.load_uci("wine-quality-red")
    assert discrete_columns(wine) == [(0, 6, 1.0)]
    counts = np.random.default_rng(0).poisson(3, size=(500, 1)).astype(float)
    assert discrete_columns(counts)[0][2] == 1.0
    halves = np.arange(100)[:, None] % 4 / 2  # 4 values on a grid of 0.5, and a continuous one
    both = np.column_stack([halves, np.linspace(0, 1, 100)])
    assert discrete_columns(both) == [(0, 4, 0.5)]
    assert discrete_columns(np.array([[0.0], [1.0], [np.pi]] * 20)) == [(0, 3, None)]
    for name in ("concrete", "energy", "power-plant"):
        assert discrete_columns(mdn_tf.load_uci(name)[1]) == []
    for loader in (mdn_tf.load_faithful, mdn_tf.load_mcycle):
        assert discrete_columns(loader()[1]) == []  # rounded, with repeats: not discrete


class _Stop(Exception):
    pass


@pytest.mark.tf
def test_fit_mdn_warns_of_a_discrete_target_before_training(monkeypatch):
    def no_training(*args):
        raise _Stop

    monkeypatch.setattr(mdn_tf.fit, "_fit_stacked", no_training)
    x, y = mdn_tf.load_uci("wine-quality-red")
    with pytest.warns(mdn_tf.DiscreteTargetWarning, match=r"6 distinct values on a grid of step 1"):
        with pytest.raises(_Stop):
            mdn_tf.fit_mdn(x, y)
    x, y = np.linspace(0, 1, 200)[:, None], np.sin(np.linspace(0, 6, 200))[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("error", mdn_tf.DiscreteTargetWarning)
        with pytest.raises(_Stop):
            mdn_tf.fit_mdn(x, y)


def _stub_fit(nlls):
    """A fit whose model scores ``nlls`` in turn (and the k-NN Gaussian's 1 more)."""

    class Model:
        def __init__(self, value):
            self.value = value

        def nll(self, x, y):
            return self.value

    values = iter(nlls)
    return lambda x, y, seed: Model(next(values))


def test_benchmark_rows_are_means_and_standard_errors(monkeypatch):
    defaults, knns = [1.0, 2.0, 4.0], [3.0, 3.5, 5.5]
    monkeypatch.setattr(uci, "_fit_default", _stub_fit(defaults))
    monkeypatch.setattr(uci, "fit_knn_gaussian", _stub_fit(knns))
    (row,) = uci.benchmark(["wine-quality-red"], splits=3)
    assert row.splits == 3 and row.rows == 1599 and row.features == 11
    for model, values in (("default", defaults), ("knn", knns)):
        assert row.nll[model].mean == pytest.approx(np.mean(values), abs=1e-4)
        error = np.std(values, ddof=1) / np.sqrt(3)
        assert row.nll[model].standard_error == pytest.approx(error, abs=1e-4)
    assert row.discrete and row.published["Deep Evidential Regression"] == 0.89
    table = uci.to_markdown([row])
    assert "| 2.333 ± 0.882 (not comparable: discrete target) | 4.000 ± 0.764 |" in table
    assert "| – |" in table  # WGBoost has no wine figure
    assert len({line.count("|") for line in table.splitlines()}) == 1  # every row complete
    continuous = dataclasses.replace(row, discrete=False)
    assert "| **2.333 ± 0.882** | 4.000 ± 0.764 |" in uci.to_markdown([continuous])


def test_benchmark_prints_its_rows_as_json(monkeypatch, capsys):
    monkeypatch.setattr(uci, "_fit_default", _stub_fit([1.0, 2.0]))
    monkeypatch.setattr(uci, "fit_knn_gaussian", _stub_fit([3.0, 3.0]))
    uci.main(["--tables", "wine-quality-red", "--splits", "2", "--json"])
    (row,) = json.loads(capsys.readouterr().out)
    assert row["table"] == "wine-quality-red" and row["splits"] == 2 and row["discrete"]
    assert row["nll"]["default"] == {"mean": 1.5, "standard_error": 0.5}
    assert row["per_split"] == {"default": [1.0, 2.0], "knn": [3.0, 3.0]}


def test_the_command_names_bad_options():
    with pytest.raises(SystemExit) as exit_info:
        uci.main(["--splits", "0"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        uci.main(["--tables", "boston"])
