"""mdn_tf: the Mixture Density Network tutorial in the TensorFlow 1.x graph style.

Importing mdn_tf loads TensorFlow with its start-up log lines silenced; import it before
``tensorflow`` in a notebook to keep the outputs clean.
"""

from mdn_tf import engine, problems, stacked
from mdn_tf._tf import GraphModeError
from mdn_tf._version import __version__
from mdn_tf.baseline import KNNGaussian, fit_knn_gaussian
from mdn_tf.data import (
    UCI_TABLES,
    arm_forward,
    arm_rms_error,
    discrete_columns,
    load_faithful,
    load_mcycle,
    load_uci,
    make_arm_data,
    make_sine_data,
    sine_curve,
    swap_axes,
    uci_splits,
)
from mdn_tf.engine import Engine, graph_loop
from mdn_tf.fit import DiscreteTargetWarning, TrainingDiverged, fit_mdn
from mdn_tf.graph import (
    MDN,
    MLP,
    Network,
    build_mdn,
    build_mlp,
    dense,
    mixture_nll,
    mixture_nll_stable,
)
from mdn_tf.mixture import (
    held_out_nll,
    mixture_cdf,
    mixture_condition,
    mixture_covariance,
    mixture_density,
    mixture_log_likelihood,
    mixture_marginal,
    mixture_mode,
    mixture_moments,
    mixture_quantile,
    sample_from_mixture,
)
from mdn_tf.model import FittedMDN, MixtureView, load_mdn
from mdn_tf.recipes import RECIPES, Recipe, default_recipe
from mdn_tf.truth import bayes_optimal_nll, inverse_branches, inverse_density, inverse_mean

__all__ = [
    "__version__",
    "MDN",
    "Network",
    "Engine",
    "engine",
    "stacked",
    "problems",
    "graph_loop",
    "arm_forward",
    "arm_rms_error",
    "make_arm_data",
    "load_faithful",
    "load_mcycle",
    "load_uci",
    "UCI_TABLES",
    "uci_splits",
    "discrete_columns",
    "DiscreteTargetWarning",
    "KNNGaussian",
    "fit_knn_gaussian",
    "mixture_cdf",
    "mixture_condition",
    "mixture_covariance",
    "mixture_marginal",
    "MixtureView",
    "mixture_mode",
    "mixture_moments",
    "mixture_quantile",
    "load_mdn",
    "MLP",
    "GraphModeError",
    "bayes_optimal_nll",
    "build_mdn",
    "fit_mdn",
    "default_recipe",
    "FittedMDN",
    "Recipe",
    "TrainingDiverged",
    "RECIPES",
    "build_mlp",
    "held_out_nll",
    "dense",
    "inverse_branches",
    "inverse_density",
    "inverse_mean",
    "make_sine_data",
    "mixture_density",
    "mixture_log_likelihood",
    "mixture_nll",
    "mixture_nll_stable",
    "sample_from_mixture",
    "sine_curve",
    "swap_axes",
]
