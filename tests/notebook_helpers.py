"""What the notebook tests share: the runner script, nbval's sanitizer, a cell's text."""

import configparser
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# the runner is a script of the repository, not part of the package: load it from its file
_spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "tools" / "run_notebooks.py")
run_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_notebooks)


def sanitizer():
    """nbval's substitutions (tests/nbval_sanitize.cfg) as one function on text."""
    config = configparser.ConfigParser()
    config.read(ROOT / "tests" / "nbval_sanitize.cfg")
    rules = [(re.compile(config[s]["regex"]), config[s]["replace"]) for s in config.sections()]

    def sanitize(text):
        for pattern, replacement in rules:
            text = pattern.sub(replacement, text)
        return text

    return sanitize


def texts(cell, sanitize):
    """The cell's text outputs (streams and plain-text results) as nbval compares them,
    sanitized, plus one line per figure."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif "image/png" in out.get("data", {}):
            parts.append("<figure>\n")
        elif "text/plain" in out.get("data", {}):
            parts.append(out.data["text/plain"])
    return sanitize("".join(parts))


def first_difference(expected, actual):
    """'line k: expected ... got ...' for the first line where two texts differ."""
    old, new = expected.splitlines(), actual.splitlines()
    for k in range(max(len(old), len(new))):
        a = old[k] if k < len(old) else "<no line>"
        b = new[k] if k < len(new) else "<no line>"
        if a != b:
            return f"line {k + 1}: stored {a!r}, got {b!r}"
    return "the texts differ only in line endings"
