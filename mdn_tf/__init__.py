"""mdn_tf: the Mixture Density Network tutorial in the TensorFlow 1.x graph style.

Importing mdn_tf loads TensorFlow with its start-up log lines silenced; import it before
``tensorflow`` in a notebook to keep the outputs clean.
"""

from mdn_tf._tf import GraphModeError
from mdn_tf.data import make_sine_data, sine_curve, swap_axes
from mdn_tf.graph import MDN, MLP, build_mdn, build_mlp, dense, mixture_nll
from mdn_tf.sampling import sample_from_mixture
from mdn_tf.truth import inverse_branches, inverse_density, inverse_mean

__version__ = "0.1.0"

__all__ = [
    "MDN",
    "MLP",
    "GraphModeError",
    "build_mdn",
    "build_mlp",
    "dense",
    "inverse_branches",
    "inverse_density",
    "inverse_mean",
    "make_sine_data",
    "mixture_nll",
    "sample_from_mixture",
    "sine_curve",
    "swap_axes",
]
