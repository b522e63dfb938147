# Two entry points (README): `make demo` and `make test`; `make docs` builds the site.
# Each installs what it needs.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.scfill-installed

.PHONY: demo test lint install peers-tf docs

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned to the CPU wheel, so no dependency pulls the CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,cluster,peers,docs]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/scfill demo --out scfill-demo --force

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"
	$(VENV)/bin/ruff check src tests benchmarks

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

# DCA and DeepImpute in their own virtualenv (TensorFlow 2.15 from PyPI, ~500 MB), at
# $(PEERS_TF); scfill finds it through SCFILL_PEERS_TF (default ~/.cache/scfill/peers-tf)
PEERS_TF ?= $(or $(SCFILL_PEERS_TF),$(HOME)/.cache/scfill/peers-tf)
peers-tf: $(STAMP)
	$(VENV)/bin/scfill peers setup --path $(PEERS_TF)

# The documentation (docs/_build/html); the tutorial is executed. CI adds -W (warnings fail).
SPHINXOPTS ?=
docs: $(STAMP)
	$(VENV)/bin/sphinx-build -b html -q $(SPHINXOPTS) docs docs/_build/html
