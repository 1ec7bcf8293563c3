# mdn_tf: every target bootstraps .venv from requirements.txt (pinned) when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
reverse = $(if $(1),$(call reverse,$(wordlist 2,$(words $(1)),$(1))) $(firstword $(1)))
# Notebooks and tests run with oneDNN off and one intra-op thread: see README "Determinism".
export TF_ENABLE_ONEDNN_OPTS ?= 0
export TF_NUM_INTRAOP_THREADS ?= 1
export PYTHONHASHSEED ?= 0

.PHONY: help install notebooks lab test test-slow test-unit test-notebooks evaluate uci bench lint format constraints clean

help:  ## show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

install: $(STAMP)  ## create .venv with the pinned dependencies and mdn_tf (editable)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

notebooks: $(STAMP)  ## execute every notebook top to bottom and store its outputs in place
	$(PY) tools/run_notebooks.py --figures docs/figures $(NOTEBOOKS)

# kernels talk over Unix sockets in a fresh temporary folder (no TCP, no ipykernel warning);
# LAB_OPTS passes more options, e.g. LAB_OPTS="--no-browser --port 8890"
lab: $(STAMP)  ## open the notebooks in JupyterLab, with the thread and oneDNN settings above
	sockets=$$(mktemp -d -t mdn_tf-lab-XXXXXX) && trap 'rm -rf "$$sockets"' EXIT INT TERM && \
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --KernelManager.transport=ipc \
		--KernelManager.ip=$$sockets/kernel $(LAB_OPTS)

NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

# files go to the workers in the order tests/conftest.py sorts them (the longest first), so
# the two workers finish together
XDIST := -n 2 --dist loadfile --no-loadscope-reorder
test: $(STAMP)  ## unit tests and nbval on notebook 3, on 2 workers
	$(PY) -m pytest -q $(XDIST) -m "not slow" $(NBVAL) $(call reverse,$(NOTEBOOKS)) tests

test-slow: $(STAMP)  ## the rest: nbval on the other notebooks, other training runs, cell re-runs, the engine, other TF1 settings
	$(PY) -m pytest -q $(XDIST) -m slow $(NBVAL) $(call reverse,$(NOTEBOOKS)) tests

test-unit: $(STAMP)  ## unit tests only
	$(PY) -m pytest -q -m "not slow" tests

test-notebooks: $(STAMP)  ## nbval only: re-run the notebooks, compare with their stored outputs
	$(PY) -m pytest -q $(NBVAL) $(NOTEBOOKS)

evaluate: $(STAMP)  ## score the recipes: the sine against its bound, the arm, the 11-problem suite, diagonal against full covariances (~45 min)
	$(PY) -m mdn_tf.evaluate

uci: $(STAMP)  ## the default recipe on five UCI tables' standard splits, beside the k-NN Gaussian and published figures
	$(PY) -m mdn_tf.uci

bench: $(STAMP)  ## time training and fit_mdn against the machine's matmul floor and peer stacks (~10 min)
	$(PY) tools/bench.py

lint: $(STAMP)  ## ruff: lint and format check, notebooks included
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)  ## ruff: fix what it can and format, notebooks included
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

constraints: $(STAMP)  ## re-pin constraints.txt from the current .venv
	{ head -2 constraints.txt; $(PY) -m pip freeze --exclude-editable; } > constraints.tmp && mv constraints.tmp constraints.txt

clean:  ## remove .venv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
