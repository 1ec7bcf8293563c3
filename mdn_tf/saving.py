"""Save a fitted MDN to a folder and load it back, without pickle.

A saved model is a folder of two files:

- ``model.json``: the format and its version, the mdn_tf version that wrote it, the recipe,
  the network's settings, the number of members, the standardization and sigma factor that
  ``predict`` applies, the training record (loss history, best epochs, seconds), the
  SHA-256 of the weights file and one of its own fields (so an edit is caught);
- ``weights.npz``: every member's kernels and biases, ``m<i>_l<j>_kernel`` and
  ``m<i>_l<j>_bias`` (loaded with ``allow_pickle=False``: loading runs no code).

``save`` writes into a temporary folder beside the target and renames it into place, so an
interrupted save leaves nothing under the name. ``load_mdn`` checks each file and names the
one that is missing, truncated, edited or of another format version.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from mdn_tf import _checks
from mdn_tf._tf import tf, tf1
from mdn_tf.fit import FittedMDN, Recipe
from mdn_tf.graph import build_mdn

FORMAT = "mdn_tf.FittedMDN"
FORMAT_VERSION = 1
MODEL_FILE, WEIGHTS_FILE = "model.json", "weights.npz"
# the build_mdn arguments a saved model records (the rest are the recipe's)
SETTINGS = (
    "mixture_size",
    "hidden_units",
    "learning_rate",
    "epsilon",
    "stable_loss",
    "weight_decay",
    "activation",
    "input_dim",
    "output_dim",
)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _model_digest(model):
    """SHA-256 of model.json's fields other than ``model_sha256``, in canonical JSON."""
    fields = {k: v for k, v in model.items() if k != "model_sha256"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def save(fitted, path, overwrite=False):
    """Write ``fitted`` (a FittedMDN) to the folder ``path``; returns the path.

    Raises FileExistsError if ``path`` exists, unless ``overwrite`` (then the old folder is
    replaced only once the new one is complete).
    """
    from mdn_tf import __version__

    if not isinstance(fitted, FittedMDN):
        raise TypeError(f"fitted must be a FittedMDN, got {type(fitted).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path, got {path!r}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists: choose another path or pass overwrite=True")
    settings = dict(fitted._members[0][1].settings)
    if not isinstance(settings["activation"], str):
        raise TypeError(
            f"a model with a callable activation ({settings['activation']!r}) cannot be "
            "saved as JSON: train it with activation 'relu' or 'tanh'"
        )
    arrays = {}
    for i, (sess, mdn) in enumerate(fitted._members):
        for j, (kernel, bias) in enumerate(mdn.layers):
            arrays[f"m{i}_l{j}_kernel"], arrays[f"m{i}_l{j}_bias"] = sess.run([kernel, bias])
    scaling = None if fitted._scaling is None else [np.asarray(a).tolist() for a in fitted._scaling]
    model = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mdn_tf_version": __version__,
        "recipe": dataclasses.asdict(fitted.recipe),
        "settings": {k: settings[k] for k in SETTINGS},
        "members": len(fitted._members),
        "layers": len(fitted._members[0][1].layers),
        "scaling": scaling,
        "sigma_scale": float(fitted.sigma_scale),
        "loss_history": np.asarray(fitted.loss_history, dtype=float).tolist(),
        "best_epochs": [int(e) for e in fitted.best_epochs],
        "train_s": float(fitted.train_s),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".saving", dir=path.parent))
    try:
        np.savez(tmp / WEIGHTS_FILE, **arrays)
        model["weights_sha256"] = _sha256(tmp / WEIGHTS_FILE)
        model["model_sha256"] = _model_digest(model)
        (tmp / MODEL_FILE).write_text(json.dumps(model, indent=1), encoding="utf-8")
        if path.exists():  # overwrite: move the old folder aside, then swap
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "model")
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _read_model(path):
    """model.json as a dict, checked; errors name the file."""
    file = path / MODEL_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file}: missing: {path} is not a saved mdn_tf model")
    try:
        model = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{file}: not valid JSON ({err}); was it truncated or edited?") from None
    if not isinstance(model, dict) or model.get("format") != FORMAT:
        raise ValueError(f"{file}: not an mdn_tf model file (format {FORMAT!r} expected)")
    if model.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{file}: format version {model.get('format_version')!r}, written by mdn_tf "
            f"{model.get('mdn_tf_version')!r}; this mdn_tf reads version {FORMAT_VERSION}"
        )
    if model.get("model_sha256") != _model_digest(model):
        raise ValueError(f"{file}: its fields differ from the SHA-256 it records: it was edited")
    return model


def _read_weights(path, model):
    """weights.npz's arrays, after checking them against model.json's checksum."""
    file = path / WEIGHTS_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file}: missing")
    if _sha256(file) != model["weights_sha256"]:
        raise ValueError(
            f"{file}: its SHA-256 differs from the one in {MODEL_FILE}: the file was "
            "truncated, edited or comes from another save"
        )
    try:
        with np.load(file, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{file}: not a readable weights file ({err})") from None


def load_mdn(path):
    """The FittedMDN saved in the folder ``path``: the same ``predict`` as the one saved.

    Each member gets a graph and session of its own, as ``fit_mdn`` gives them; close them
    with ``close()`` or a ``with`` block. Validation and monitor histories are not saved.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path, got {path!r}")
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder (a saved model is a folder)")
    model = _read_model(path)
    arrays = _read_weights(path, model)
    file = path / MODEL_FILE
    try:
        recipe = dict(model["recipe"])
        recipe["hidden_units"] = tuple(recipe["hidden_units"])
        recipe = Recipe(**recipe)
        settings = dict(model["settings"])
        settings["hidden_units"] = tuple(settings["hidden_units"])
        members = _checks.positive_int("members", model["members"])
        layers = _checks.positive_int("layers", model["layers"])
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"{file}: {err}") from None
    built = []
    for i in range(members):
        graph = tf.Graph()
        with graph.as_default():
            mdn = build_mdn(**settings)
            sess = tf1.Session(graph=graph)
            sess.run(tf1.global_variables_initializer())
            if len(mdn.layers) != layers:
                raise ValueError(
                    f"{file}: {layers} layers, but its settings build {len(mdn.layers)}"
                )
            for j, (kernel, bias) in enumerate(mdn.layers):
                for variable, name in ((kernel, f"m{i}_l{j}_kernel"), (bias, f"m{i}_l{j}_bias")):
                    value = arrays.get(name)
                    if value is None or list(value.shape) != variable.shape.as_list():
                        raise ValueError(
                            f"{path / WEIGHTS_FILE}: {name} is missing or has the wrong shape"
                        )
                    variable.load(value, sess)
        built.append((sess, mdn))
    scaling = model["scaling"]
    return FittedMDN(
        recipe=recipe,
        _members=built,
        loss_history=np.asarray(model.get("loss_history", []), dtype=float),
        val_history=[],
        monitor_history=np.zeros((0, 2)),
        best_epochs=list(model.get("best_epochs", [])),
        sigma_scale=float(model["sigma_scale"]),
        train_s=float(model.get("train_s", 0.0)),
        _scaling=None if scaling is None else tuple(np.asarray(a) for a in scaling),
    )
