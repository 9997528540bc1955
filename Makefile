# Nadir — the whole set-up on a fresh machine is `make serve` or `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
RADIOMICS_STAMP := $(VENV)/.installed-radiomics
DEV_STAMP := $(VENV)/.installed-dev
# libgl1, libglib2.0-0: OpenCV's shared libraries (rt-utils, the tests' independent RTSTRUCT reader)
APT_PACKAGES := dcmtk orthanc orthanc-dicomweb dicom3tools pixelmed-apps chromium postgresql rabbitmq-server libgl1 libglib2.0-0
JS_DIR := tests/report/js

.PHONY: help serve test check lint typecheck pytest coverage bench demo apt js viewer clean clean-data

help:
	@echo "make serve   run the node on the embedded default (SQLite + spool in ./data, AE NADIR, port 11112)"
	@echo "make test    install what the tests need (apt, venv, npm), then ruff, mypy --strict, pytest"
	@echo "make check   ruff, mypy --strict and the fast unit tests (no Orthanc, dcmtk, PostgreSQL, RabbitMQ, browser)"
	@echo "make bench   run the benchmarks under bench/"
	@echo "make demo    Orthanc + Nadir + synthetic patients (brain MR, liver CT, whole-body PET/CT; baseline, 2 follow-ups each): tables, URLs, latency"
	@echo "make clean   remove the virtualenv, caches and build outputs (never data/)"
	@echo "make clean-data  delete data/ (the spool and database of make serve), after a prompt"
	@echo "GPU=1        with serve/test/demo on a fresh virtualenv: ONNX Runtime with CUDA (nadir[gpu]) instead of the CPU build"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel

# ONNX Runtime: the CPU build (a runtime dependency) or, with GPU=1, the CUDA build (the
# extra nadir[gpu]). Both install the module `onnxruntime`, so one replaces the other.
ORT_CPU := 'onnxruntime>=1.20,<2'
ORT_GPU := 'onnxruntime-gpu>=1.20,<2'

# what serving needs: the runtime dependencies only
$(STAMP): pyproject.toml setup.py | $(BIN)/python
	$(BIN)/pip install -q -e .
ifeq ($(GPU),1)
	$(BIN)/pip uninstall -q -y onnxruntime
	$(BIN)/pip install -q --force-reinstall --no-deps $(ORT_GPU)
else
	if $(BIN)/pip show -q onnxruntime-gpu 2>/dev/null; then \
	  $(BIN)/pip uninstall -q -y onnxruntime-gpu && $(BIN)/pip install -q --force-reinstall --no-deps $(ORT_CPU); fi
endif
	touch $@

# nadir[demo]: nilearn, whose MNI152 template the demo's brain phantom is built on
$(DEMO_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[demo]'
	touch $@

# nadir[radiomics]: pyradiomics only builds against numpy 2 without build isolation
$(RADIOMICS_STAMP): $(STAMP)
	$(BIN)/pip install -q numpy setuptools wheel versioneer
	$(BIN)/pip install -q --no-build-isolation -e '.[radiomics]'
	touch $@

# the tests exercise every part: both extras, and the dev group
$(DEV_STAMP): $(STAMP) $(DEMO_STAMP) $(RADIOMICS_STAMP)
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

# the suite in parallel, a test file per worker (its fixtures and peers stay together). On 2 cores the
# suite keeps them about 75 % busy with two workers (the rest is waiting on real peers: Orthanc, dcmtk,
# PostgreSQL, RabbitMQ, a browser); a third worker fills some of that wait (971 s against 1049 s for the
# whole suite, measured in one session on the same tree)
PYTEST_WORKERS ?= 3

# tests/criteria run once, under coverage (the first line), and not again with the rest
pytest: $(DEV_STAMP) apt js viewer
	$(BIN)/coverage run --branch --source=daemon/criteria -m pytest -q -p no:cacheprovider tests/criteria
	@echo "branch coverage of daemon/criteria by its own tests (must be 100 %):"
	$(BIN)/coverage report --fail-under=100
	$(BIN)/pytest -q -rs -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile --ignore=tests/criteria

test: apt $(DEV_STAMP) js lint typecheck pytest

# the quick loop (under 2 minutes on 2 cores): no real peer is started; the integration tests
# and the PostgreSQL variants of the database tests are deselected
check: lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider -m "not integration and not slow" -k "not postgresql"

# the brain-metastases, liver and whole-body FDG PET/CT routes end to end: Orthanc + nadir serve + the SYNTHETIC demo patients
demo: $(DEMO_STAMP) apt viewer
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
	$(BIN)/python bench/fuzz_receive.py

# never data/: the spool and database of a node started with `make serve` (make clean-data)
clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist *.egg-info

# YES=1 answers the prompt (a script that means it)
clean-data:
	@if [ ! -e data ]; then echo "no data/ here: nothing to delete"; exit 0; fi; \
	if [ "$(YES)" != 1 ]; then \
	  read -r -p "Delete data/ (the spool and database of this node: every received study, job and result)? Type yes: " answer || answer=; \
	  if [ "$$answer" != yes ]; then echo "kept data/"; exit 1; fi; \
	fi; \
	rm -rf data && echo "deleted data/"
