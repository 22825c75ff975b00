# Two commands for a fresh machine: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Strict, over the product code ([tool.pyright] in pyproject.toml). The variable stops the
# wrapper asking PyPI on each run whether a newer pyright exists: the version is pinned.
PYRIGHT := PYRIGHT_PYTHON_IGNORE_WARNINGS=1 $(BIN)/pyright

.PHONY: venv demo test lint typecheck format bench clean

venv: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Sluicegate needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: venv
	$(BIN)/sluicegate-demo $(if $(ROUTER),--router $(ROUTER)) $(ARGS)

test: venv
	sh deploy/install_dataplanes.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PYRIGHT)
	$(BIN)/pytest -q $(ARGS)

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(PYRIGHT)

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# About 14 min (docs/BENCHMARKS.md): history length (with hooks, the guard, a fleet), then
# breach to safety on one Envoy, on a 3-Envoy fleet and in the guard (10 runs each).
bench: venv
	$(BIN)/python -m bench.history_length
	$(BIN)/python -m bench.breach_to_safety

clean:
	rm -rf $(VENV) .state .pytest_cache .ruff_cache
