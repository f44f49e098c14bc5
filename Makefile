# The README's commands. Everything installs into .venv on first use (idempotent).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
DAVIS_ROOT ?=
DEVICE ?= auto

.PHONY: setup test reproduce lab bench clean

setup: $(VENV)/.installed

# Re-installs only when pyproject.toml changes. torch/torchvision come from this machine's disk.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,notebooks]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

test: setup
	$(PY) -m pytest -q tests

reproduce: setup
	$(PY) -m rpmnet.notebooks --profile $(PROFILE) --device $(DEVICE) \
	    $(if $(DAVIS_ROOT),--davis-root $(DAVIS_ROOT),)

lab: setup
	$(VENV)/bin/jupyter lab notebooks

bench: setup
	$(PY) -m rpmnet bench ops
	$(PY) -m rpmnet bench eval
	$(PY) -m rpmnet bench train
	$(PY) -m rpmnet bench propagate

clean:
	rm -rf $(VENV) data/synthetic* .pytest_cache
