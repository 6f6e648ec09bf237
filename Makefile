# Every target that runs code depends on a venv stamp, so a fresh clone needs only `make demo` or `make test`.
# `make demo` installs forgeline with the quickstart's needs only; `make test` adds the dev tools and the heavy
# example dependencies (PyTorch, DuckDB).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Stamp written after a successful install; reinstall only when pyproject.toml is newer.
INSTALLED := $(VENV)/.installed
DEMO_INSTALLED := $(VENV)/.installed-demo
# --maxschedchunk 2: each worker takes two tests at a time, so the slowest (first, see tests/conftest.py) spread over both.
PYTEST_ARGS ?= -q -n 2 --maxschedchunk 2 --durations=30

.PHONY: venv demo-venv demo test test-deps bench lint clean

venv: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[dev,examples,reports]'
	touch $@

demo-venv: $(DEMO_INSTALLED)

$(DEMO_INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[quickstart]'
	touch $@

demo: demo-venv
	$(BIN)/forgeline run examples/quickstart/pipeline.py
	$(BIN)/forgeline executions list
	@echo
	@echo "forgeline is installed in $(BIN). To type just 'forgeline': source $(VENV)/bin/activate"
	@echo "(or add $$(cd $(BIN) && pwd) to your PATH)"

# The tests run only on code that passes the lint (ruff, mypy strict, the import-linter layers).
test: venv test-deps lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# PostgreSQL server binaries for the backend tests (tests/backends, tests/store/metadata/test_postgres_store.py).
# Installed with apt-get when missing and we are root; never fails the build: without them those tests skip.
test-deps:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing PostgreSQL for the backend tests"; \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } \
			|| echo "could not install PostgreSQL: its tests will skip"; \
	else \
		echo "PostgreSQL is not installed and cannot be installed here (needs root and apt-get): its tests will skip"; \
	fi
	@# pdftoppm (poppler-utils): the report tests render a PDF page to check it is not blank; without it they skip that
	@if command -v pdftoppm >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q poppler-utils >/dev/null 2>&1 \
			|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q poppler-utils >/dev/null; }; } \
			|| echo "could not install poppler-utils: the PDF rendering check will skip"; \
	fi
	@# Debian's chromium: the web UI's browser tests (tests/api/ui) drive it through Playwright; without it they skip
	@if [ -x /usr/bin/chromium ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the web UI's browser tests"; \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
			|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; } \
			|| echo "could not install chromium: the browser tests will skip"; \
	fi

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
