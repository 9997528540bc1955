# Nadir — the whole set-up on a fresh machine is `make serve` or `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
APT_PACKAGES := dcmtk orthanc orthanc-dicomweb dicom3tools pixelmed-apps chromium postgresql rabbitmq-server
JS_DIR := tests/report/js

.PHONY: help serve test check lint typecheck pytest coverage bench demo apt js viewer clean

help:
	@echo "make serve   run the node on the embedded default (SQLite + spool in ./data, AE NADIR, port 11112)"
	@echo "make test    install what the tests need (apt, venv, npm), then ruff, mypy --strict, pytest"
	@echo "make check   ruff, mypy --strict and the fast unit tests (no Orthanc, dcmtk, PostgreSQL, RabbitMQ, browser)"
	@echo "make bench   run the benchmarks under bench/"
	@echo "make demo    Orthanc + Nadir + a synthetic patient (baseline, 2 follow-ups): RANO-BM tables, URLs, latency"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel

# runtime install; pyradiomics only builds against numpy 2 without build isolation
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	$(BIN)/pip install -q numpy setuptools wheel versioneer
	$(BIN)/pip install -q --no-build-isolation 'pyradiomics>=3.0.1,<4'
	touch $@

$(DEV_STAMP): $(STAMP)
	$(BIN)/pip install -q --group dev
	touch $@

serve: $(STAMP)
	$(BIN)/nadir serve $(if $(CONFIG),--config $(CONFIG),)

# Debian packages the tests drive as real peers; installed only when missing
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(JS_DIR)/node_modules/.installed: $(JS_DIR)/package.json
	@if [ -f $(JS_DIR)/package.json ]; then cd $(JS_DIR) && npm ci --no-audit --no-fund --silent && touch node_modules/.installed; fi

js: apt
	@if [ -f $(JS_DIR)/package.json ]; then $(MAKE) --no-print-directory $(JS_DIR)/node_modules/.installed; fi

# the built OHIF viewer (npm @ohif/app, pinned) and playwright-core for the browser test
OHIF_DIR := deploy/ohif
$(OHIF_DIR)/node_modules/.installed: $(OHIF_DIR)/package.json $(OHIF_DIR)/package-lock.json $(OHIF_DIR)/install-viewer.sh
	cd $(OHIF_DIR) && npm ci --no-audit --no-fund --silent && ./install-viewer.sh && touch node_modules/.installed

viewer: apt
	@$(MAKE) --no-print-directory $(OHIF_DIR)/node_modules/.installed

lint: $(DEV_STAMP)
	$(BIN)/ruff check daemon tests bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy --strict daemon

pytest: $(DEV_STAMP) apt js viewer
	$(BIN)/coverage run --branch --source=daemon/criteria -m pytest -q -rs -p no:cacheprovider
	@echo "branch coverage of daemon/criteria (must be 100 %):"
	$(BIN)/coverage report --fail-under=100

test: apt $(DEV_STAMP) js lint typecheck pytest

# the quick loop (under 2 minutes on 2 cores): no real peer is started; the integration tests
# and the PostgreSQL variants of the database tests are deselected
check: lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider -m "not integration and not slow" -k "not postgresql"

# the brain-metastases route end to end: Orthanc + nadir serve + the SYNTHETIC demo patient
demo: $(STAMP) apt viewer
	$(BIN)/python -m daemon.demo.run $(if $(WORKDIR),--workdir $(WORKDIR),)

BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(DEV_STAMP)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q --group bench
	touch $@

bench: $(BENCH_STAMP) apt
	$(BIN)/python bench/receive.py
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/measure.py
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/e2e.py

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache
