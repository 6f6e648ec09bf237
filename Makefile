# Every target that runs code depends on `venv`, so a fresh clone needs only `make demo` or `make test`.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Stamp written after a successful install; reinstall only when pyproject.toml is newer.
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?= -q -n 2

.PHONY: venv demo test bench lint clean

venv: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[dev,examples]'
	touch $@

demo: venv
	$(BIN)/forgeline run examples/quickstart/pipeline.py
	$(BIN)/forgeline executions list

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv
	@set -e; for bench in benchmarks/bench_*.py; do \
		echo "== $$bench"; \
		$(BIN)/python $$bench; \
	done

lint: venv
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# Leaves .venv and .forgeline (executions, artifacts, logs) alone.
clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
