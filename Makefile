# Two commands: `make demo` and `make test`. Both create .venv and install the project first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Exact versions (with hashes) of every dependency, dev extras included; `make lock` refreshes it.
LOCK := requirements.lock
UV_VERSION := 0.13.9
# Extra flags for `make lock`, e.g. LOCK_FLAGS=--upgrade (all) or --upgrade-package mlflow (one)
LOCK_FLAGS ?=

.PHONY: demo test lint serve clean lock

# The lock is installed as it is (hash-checked), then the project itself without resolving again.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode -r $(LOCK)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

# Re-resolve pyproject.toml into the lock; versions already locked are kept unless LOCK_FLAGS
# says otherwise. uv reads PyPI (not pip's config), for Linux, macOS and Windows, Python >= 3.11.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --universal --generate-hashes \
		--custom-compile-command 'make lock' $(LOCK_FLAGS) -o $(LOCK)

demo: $(STAMP)
	$(BIN)/memberscore demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy memberscore features decisions simulator training serving pipelines
	$(BIN)/lint-imports

serve: $(STAMP)
	$(BIN)/memberscore serve

clean:
	rm -rf data mlruns/mlflow.db mlruns/artifacts $(VENV)
