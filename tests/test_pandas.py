"""pandas inputs: a DataFrame or Series is read by position, exactly as its numpy values."""

import numpy as np
import pandas as pd
import pytest

import mdn_tf


@pytest.mark.tf
@pytest.mark.slow  # five short fits: make test-slow
def test_fit_and_questions_take_dataframes_and_series():
    x, y = mdn_tf.make_arm_data(120, seed=3)
    # a shuffled, non-default index: values are read by position, not by label
    index = pd.Index(np.random.default_rng(0).permutation(120) * 10, name="trial")
    x_df = pd.DataFrame(x, columns=["hand_x", "hand_y"], index=index)
    y_df = pd.DataFrame(y, columns=["theta1", "theta2"], index=index[::-1])
    recipe = mdn_tf.Recipe(mixture_size=2, hidden_units=(8,), epochs=15, standardize=True)
    from_pandas = mdn_tf.fit_mdn(x_df, y_df, recipe=recipe, seed=4)
    from_numpy = mdn_tf.fit_mdn(x, y, recipe=recipe, seed=4)
    np.testing.assert_array_equal(from_pandas.loss_history, from_numpy.loss_history)
    for got, want in zip(from_pandas.predict(x_df), from_numpy.predict(x)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(from_pandas.log_prob(x_df, y_df), from_numpy.log_prob(x, y))

    # one input and one output as Series
    xs, ys = mdn_tf.swap_axes(*mdn_tf.make_sine_data(60, seed=1))
    x_s, y_s = pd.Series(xs[:, 0], name="y"), pd.Series(ys[:, 0], name="x")
    small = mdn_tf.Recipe(mixture_size=3, hidden_units=(8,), epochs=10)
    fitted = mdn_tf.fit_mdn(x_s, y_s, recipe=small, seed=2)
    assert fitted.mean(x_s).shape == (60, 1)
    assert fitted.quantile(x_s, [0.5]).shape == (60, 1)
    np.testing.assert_array_equal(fitted.cdf(x_s, y_s), fitted.cdf(xs, ys))


def test_pandas_values_that_are_not_numbers_are_named():
    text = pd.DataFrame({"waiting": [79, 54], "site": ["a", "b"]})
    with pytest.raises(TypeError, match="x_data must hold real numbers"):
        mdn_tf.fit_mdn(text, [1.0, 2.0])
    missing = pd.Series([1.0, None, 3.0], dtype="Float64")  # pd.NA
    with pytest.raises(ValueError, match=r"y_data must be finite, got 1 NaN"):
        mdn_tf.fit_mdn([0.0, 1.0, 2.0], missing)
