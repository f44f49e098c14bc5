# The README's commands. Everything installs into .venv on first use (idempotent).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
DAVIS_ROOT ?=
DEVICE ?= auto
# The browser test's Chromium: Debian's package (Playwright only drives it, never downloads one).
CHROMIUM := /usr/bin/chromium
ROOT := $(filter 0,$(shell id -u))
APT := $(if $(ROOT),,sudo) apt-get
# JupyterLab refuses to start as root (containers, CI) without this.
ALLOW_ROOT := $(if $(ROOT),--allow-root,)

.PHONY: setup browser test reproduce lab bench clean

setup: $(VENV)/.installed

# Re-installs only when pyproject.toml changes. torch/torchvision come from this machine's disk.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,notebooks]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# Chromium for tests/test_browser.py. Without apt-get it says so and the browser test skips.
browser:
	@if [ -x $(CHROMIUM) ]; then echo "browser: $(CHROMIUM) is installed"; \
	elif command -v apt-get >/dev/null; then \
	    $(APT) update -qq && DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq chromium >/dev/null; \
	else echo "browser: no $(CHROMIUM) and no apt-get; tests/test_browser.py will be skipped"; fi

test: setup
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null; then $(MAKE) --no-print-directory browser; fi
	$(PY) -m pytest -q tests

reproduce: setup
	$(PY) -m rpmnet.notebooks --profile $(PROFILE) --device $(DEVICE) \
	    $(if $(DAVIS_ROOT),--davis-root $(DAVIS_ROOT),)

lab: setup
	$(VENV)/bin/jupyter lab $(ALLOW_ROOT) notebooks

bench: setup
	$(PY) -m rpmnet bench ops
	$(PY) -m rpmnet bench eval
	$(PY) -m rpmnet bench train
	$(PY) -m rpmnet bench propagate

clean:
	rm -rf $(VENV) data/synthetic* .pytest_cache
