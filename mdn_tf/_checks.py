"""Argument checks shared by the public functions: fail early, name the argument."""

import argparse
import numbers

import numpy as np

# Rows of mixture weights must sum to 1 within this; float32 softmax is good to ~1e-6.
WEIGHT_SUM_TOL = 1e-3


def positive_int(name, value):
    """Return ``value`` as an int > 0, or raise TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _real(name, value, expected):
    """Raise TypeError unless ``value`` is a real number (bools excluded)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} {value!r}")


def positive_float(name, value):
    """Return ``value`` as a finite float > 0, or raise TypeError/ValueError."""
    _real(name, value, "a positive number")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def non_negative_float(name, value):
    """Return ``value`` as a finite float >= 0, or raise TypeError/ValueError."""
    _real(name, value, "a number >= 0")
    if not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def non_negative_int(name, value):
    """Return ``value`` as an int >= 0, or raise TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= 0, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def optional_seed(name, value):
    """Return ``value`` if it is None or an int >= 0 (a numpy seed), else raise."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__} {value!r}")
    return None if value is None else non_negative_int(name, value)


def cli_int(check, name):
    """An argparse ``type=``: the text as an int passed through ``check(name, value)``.

    A bad value becomes argparse's usage message and exit code 2, not a traceback.
    """

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        try:
            return check(name, value)
        except (TypeError, ValueError) as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parse.__name__ = name  # argparse names the type in "invalid <name> value"
    return parse


def _int_tuple(name, value, check, what):
    """Return ``value`` (an int or a non-empty sequence of ints) as a tuple, each entry passed
    through ``check``; ``what`` names an entry in the messages."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a sequence of {what}s (ints), got {value!r}")
    out = tuple(check(f"{name}[{i}]", v) for i, v in enumerate(value))
    if not out:
        raise ValueError(f"{name} must list at least one {what}, got an empty sequence")
    return out


def unit_sequence(name, value):
    """Return a non-empty tuple of positive ints (layer widths)."""
    return _int_tuple(name, value, positive_int, "layer width")


def numeric_array(name, value):
    """Return ``value`` as a float64 array, or raise TypeError unless it holds real numbers.

    pandas ``DataFrame`` and ``Series`` are read by position (their index is ignored);
    missing values (NaN, ``pd.NA``) become NaN, for the finiteness checks to name.
    """
    if hasattr(value, "to_numpy") and hasattr(value, "iloc"):  # pandas, without importing it
        try:
            return value.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must hold real numbers: {err}") from None
    try:
        arr = np.asarray(value)
    except Exception as err:  # ragged lists and the like
        raise TypeError(f"{name} must be array-like of numbers: {err}") from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def finite_array(name, value):
    """Return ``value`` as a float64 array of finite numbers (any shape)."""
    arr = numeric_array(name, value)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got NaN or infinite values")
    return arr


def finite_scalar(name, value):
    """Return ``value`` as a finite float, or raise TypeError/ValueError."""
    _real(name, value, "a real number")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def column(name, value, finite=True):
    """Return ``value`` as a float64 array of shape (n, 1); accepts (n,) or (n, 1), n >= 1."""
    return matrix(name, value, width=1, finite=finite)


def matrix(name, value, width=None, finite=True):
    """Return ``value`` as a C-ordered float64 array (n, d), n >= 1; (n,) is read as (n, 1).

    With ``width`` given, d must equal it. C order makes column statistics independent of
    the input's layout (numpy sums a contiguous column pairwise, a strided one in order).
    """
    arr = np.ascontiguousarray(numeric_array(name, value))
    if arr.ndim == 1:
        arr = arr[:, None]
    want = "(n, d) or (n,)" if width is None else f"(n, {width})" + (" or (n,)" * (width == 1))
    if arr.ndim != 2 or 0 in arr.shape or (width is not None and arr.shape[1] != width):
        raise ValueError(f"{name} must have shape {want} with n >= 1, got {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(f"{name} must be finite, got {bad} NaN or infinite value(s)")
    return arr


def same_length(**arrays):
    """Raise ValueError unless all arrays have the same number of rows."""
    lengths = {name: len(arr) for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"{', '.join(lengths)} must have the same number of rows: {shown}")


def mixture(p_val, mu_val, sigma_val, zero_sigma=False):
    """Check mixture parameters: weights (N, K), a distribution per row; means and sigmas
    (N, K) for one output dimension or (N, K, D) for D, or means (N, K, D) and
    lower-triangular Cholesky factors (N, K, D, D) of the covariances (Sigma = L L^T);
    sigma (or the factors' diagonal) > 0, or >= 0 with ``zero_sigma`` (where a component
    of zero width is still defined: sampling).

    Returns p (N, K), mu (N, K, D) and sigma (N, K, D) or (N, K, D, D) as float64 arrays,
    and D.
    """
    arrays = {}
    for name, value in (("p_val", p_val), ("mu_val", mu_val), ("sigma_val", sigma_val)):
        arr = numeric_array(name, value)
        ranks = {"p_val": (2,), "mu_val": (2, 3), "sigma_val": (2, 3, 4)}[name]
        if arr.ndim not in ranks or 0 in arr.shape:
            shape = {
                "p_val": "(N, K)",
                "mu_val": "(N, K) or (N, K, D)",
                "sigma_val": "(N, K), (N, K, D) or (N, K, D, D)",
            }[name]
            raise ValueError(f"{name} must have shape {shape} with N, K, D >= 1, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got NaN or infinite values")
        arrays[name] = arr
    p, mu, sigma = arrays.values()
    full = sigma.ndim == 4
    want = mu.shape + mu.shape[-1:] if full else mu.shape
    if sigma.shape != want or mu.shape[:2] != p.shape or full and mu.ndim != 3:
        shapes = {name: arr.shape for name, arr in arrays.items()}
        raise ValueError(
            "p_val (N, K), mu_val and sigma_val (N, K) or (N, K, D), or mu_val (N, K, D) and "
            f"sigma_val (N, K, D, D), must agree in N, K (and D), got {shapes}"
        )
    if np.any(p < 0):
        raise ValueError(f"p_val must be non-negative mixture weights, min is {p.min():.3g}")
    sums = p.sum(axis=1)
    worst = float(np.max(np.abs(sums - 1.0)))
    if worst > WEIGHT_SUM_TOL:
        raise ValueError(
            f"each row of p_val must sum to 1 (within {WEIGHT_SUM_TOL:g}), "
            f"worst row is off by {worst:.3g}"
        )
    if full:
        upper = np.abs(np.triu(sigma, 1)).max()
        if upper > 0:
            raise ValueError(
                "sigma_val (N, K, D, D) must be lower-triangular Cholesky factors, got an "
                f"entry above the diagonal of {upper:.3g}"
            )
    diag = np.diagonal(sigma, axis1=2, axis2=3) if full else sigma
    if np.any(diag < 0) or not zero_sigma and np.any(diag == 0):
        want = ">= 0" if zero_sigma else "> 0"
        what = "the diagonal of sigma_val's factors" if full else "sigma_val"
        raise ValueError(f"{what} must be {want}, min is {diag.min():.3g}")
    if mu.ndim == 2:
        mu, sigma = mu[:, :, None], sigma[:, :, None]
    return p, mu, sigma, mu.shape[2]


def dims(name, value, d):
    """Return ``value`` (output dimensions: an int or a sequence of ints) as a tuple of
    distinct ints in [0, d), at least one, or raise TypeError/ValueError naming ``name``."""
    out = _int_tuple(name, value, non_negative_int, "output dimension")
    if max(out) >= d:
        raise ValueError(f"{name} must be output dimensions in [0, {d}), got {list(out)}")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat a dimension, got {list(out)}")
    return out
