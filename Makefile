# The two commands a newcomer needs:
#   make up    start Flywheel with everything embedded and demo data
#   make test  install what the tests need and run them all
# `make install` is the install step shared by `make up` and the Containerfile.

SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# Debian packages the test suite uses (installed by `make test` when running
# as root on Debian and missing).
# bubblewrap and python3-pytest for the sandboxes; podman, runc and debootstrap for the Docker-API
# backend, whose test image is built from Debian's packages on first use (tests/sandbox_backends.py).
TEST_SYSTEM_PACKAGES ?= chromium bubblewrap python3-pytest podman runc debootstrap

# The MLflow tracking server that tests/test_credit_mlflow.py logs credit runs to runs from a
# venv of its own: its dependencies (Flask, SQLAlchemy, ...) stay out of Flywheel's.
MLFLOW_VENV ?= .venv-mlflow
MLFLOW_VERSION := 3.17.2

# The TypeScript SDK (sdks/typescript): its pinned dev dependencies (package-lock.json) and its
# build (dist/), which tests/test_sdk_typescript.py runs under Node's test runner and in Chromium.
SDK_TS := sdks/typescript

.PHONY: up install install-test system-deps lint test clean sdk-typescript

$(VENV)/.installed: pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Flywheel needs Python 3.11, found " + sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip==26.3"
	$(PIP) install -e .
	@touch $@

install: $(VENV)/.installed

up: install
	@echo "The flywheel command is $(VENV)/bin/flywheel; 'source $(VENV)/bin/activate' puts it on PATH."
	$(VENV)/bin/flywheel up --demo

$(VENV)/.installed-test: $(VENV)/.installed examples/flywheel-example-plugin/pyproject.toml sdks/python/pyproject.toml
	$(PIP) install -e '.[test,llm-train]'
	$(PIP) install -e examples/flywheel-example-plugin
	$(PIP) install -e sdks/python
	@touch $@

$(MLFLOW_VENV)/.installed:
	@test -x $(MLFLOW_VENV)/bin/python || $(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/python -m pip --disable-pip-version-check -q install "mlflow==$(MLFLOW_VERSION)"
	@touch $@

install-test: $(VENV)/.installed-test $(MLFLOW_VENV)/.installed system-deps

system-deps:
	@missing=""; for p in $(TEST_SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "missing system packages:$$missing (install them, or run make test as root on Debian)"; fi; \
	fi

# ruff (rules in pyproject.toml) and the plugin-boundary import contract, before the tests.
lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

$(SDK_TS)/node_modules/.installed: $(SDK_TS)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js 18+ with npm"; exit 1; }
	npm ci --prefix $(SDK_TS) --no-audit --no-fund
	@touch $@

sdk-typescript: $(SDK_TS)/node_modules/.installed
	npm run --prefix $(SDK_TS) build

test: install-test lint sdk-typescript
	$(PY) -m pytest -q

# As root, the embedded Postgres cluster may live outside .flywheel (see the
# README, "Embedded services, and running as root"): .flywheel records where.
clean:
	@cluster=$$(cat .flywheel/services/postgres/outside 2>/dev/null); \
	case "$$cluster" in *..*) ;; */flywheel/pg-*) echo "rm -rf $$cluster"; rm -rf -- "$$cluster";; esac
	rm -rf $(VENV) $(MLFLOW_VENV) .flywheel $(SDK_TS)/node_modules $(SDK_TS)/dist
