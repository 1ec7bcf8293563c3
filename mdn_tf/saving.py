"""The folder format of a saved model, without pickle: write it atomically, read it back
checked. ``FittedMDN.save`` and ``mdn_tf.load_mdn`` (``mdn_tf.model``) use it.

A saved model is a folder of two files:

- ``model.json``: the format and its version, the mdn_tf version that wrote it, the recipe,
  the network (``Network.to_json``, under "settings"), the number of members, the
  standardization and sigma factor that ``predict`` applies, the training record (loss
  history, best epochs, seconds), the SHA-256 of the weights file and one of its own
  fields (so an edit is caught);
- ``weights.npz``: every member's kernels and biases, ``m<i>_l<j>_kernel`` and
  ``m<i>_l<j>_bias`` (loaded with ``allow_pickle=False``: loading runs no code).

Format version 1 is a model with diagonal covariances (a folder whose settings have no
``covariance`` is one: mdn_tf wrote such folders before it had full covariances).
Version 2 is the same files for a model with full covariances: its out layer is wider, and
a reader of version 1 alone refuses it with an error naming the version instead of failing
on a shape. A folder of another version is refused with an error naming the versions.

``write`` puts the files in a temporary folder beside the target and renames it into
place, so an interrupted save leaves nothing under the name. ``read`` checks each file and
names the one that is missing, truncated, edited or of another format version.
"""

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from mdn_tf._version import __version__

FORMAT = "mdn_tf.FittedMDN"
FORMAT_VERSION = 1  # diagonal covariances
FULL_FORMAT_VERSION = 2  # full covariances: the same files, a wider out layer
READS = (FORMAT_VERSION, FULL_FORMAT_VERSION)
MODEL_FILE, WEIGHTS_FILE = "model.json", "weights.npz"


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


def check_path(path):
    """``path`` as a Path, or TypeError."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path, got {path!r}")
    return Path(path)


def write(path, model, arrays, overwrite=False):
    """Write ``model`` (model.json's fields, without format and checksums) and ``arrays``
    (weights.npz's) to the folder ``path``; returns the path.

    Raises FileExistsError if ``path`` exists, unless ``overwrite`` (then the old folder is
    replaced only once the new one is complete).
    """
    path = check_path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists: choose another path or pass overwrite=True")
    full = model.get("settings", {}).get("covariance") == "full"
    model = {
        "format": FORMAT,
        "format_version": FULL_FORMAT_VERSION if full else FORMAT_VERSION,
        "mdn_tf_version": __version__,
        **model,
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
    if model.get("format_version") not in READS:
        raise ValueError(
            f"{file}: format version {model.get('format_version')!r}, written by mdn_tf "
            f"{model.get('mdn_tf_version')!r}; this mdn_tf reads versions "
            f"{' and '.join(map(str, READS))}"
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


def read(path):
    """(model.json's fields, weights.npz's arrays) of the folder ``path``, both checked."""
    path = check_path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder (a saved model is a folder)")
    model = _read_model(path)
    return model, _read_weights(path, model)
