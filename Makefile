# RecWorld: `make demo` runs the demo scenario offline; `make test` runs the test suite.
# Both create/refresh .venv idempotently first (pip; network only to the package registries).

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BROWSER_STAMP := $(VENV)/.browser-stamp
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-fast lint bench clean browser

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall only when the project definition changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[all,test]"
	$(BIN)/pip install -q --no-deps recbole==1.2.1
	$(BIN)/python -m recworld.setup_data
	$(BIN)/python -m recworld.scenarios.warmup
	touch $(STAMP)

setup: $(STAMP)

# Debian's chromium drives the dashboard's end-to-end test (playwright's own browser download is not used).
$(BROWSER_STAMP): | $(BIN)/python
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "warning: could not install chromium; browser tests will be skipped"; \
	  else echo "warning: chromium is not installed (sudo apt-get install chromium); browser tests will be skipped"; fi; \
	fi
	touch $(BROWSER_STAMP)

browser: $(BROWSER_STAMP)

# A real PostgreSQL server (Debian's) for the storage tests; they skip where it cannot be installed.
$(VENV)/.postgres-stamp: | $(BIN)/python
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || echo "warning: could not install postgresql; PostgreSQL tests will be skipped"; \
	  else echo "warning: postgresql is not installed; PostgreSQL tests will be skipped"; fi; \
	fi
	touch $(VENV)/.postgres-stamp

# One simulated day of the 943 ML-100K users with LLM language (under three minutes on 2 cores, see README);
# the full week: $(BIN)/recworld run quickstart --brain hybrid
demo: setup
	$(BIN)/recworld run demo --interview "What did you enjoy on the app this week, and what do you want more of?"

# Two pytest-xdist workers (the CI machine has 2 cores; `make test TEST_WORKERS=4` elsewhere). A test file is
# one unit of work, and tests/conftest.py joins the files that share a fixture or a machine-wide resource.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: setup browser $(VENV)/.postgres-stamp lint
	$(BIN)/python -m pytest -q $(XDIST)

test-fast: setup
	$(BIN)/python -m pytest -q $(XDIST) -m "not slow"

# Ruff (lint + format) and the import-linter layering contracts.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python benchmarks/bench_world.py

clean:
	rm -rf $(VENV) runs .pytest_cache
