# `make demo` and `make test` are the README's two commands; both set everything up first.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test lint test-deps bench lock

# constraints.txt pins every package (dev tools too), so every setup installs the same versions
# (PYTHONWARNINGS: setuptools' notice of what an editable install is, the same every time, stays out)
$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	PYTHONWARNINGS='ignore:Editable installation' $(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/slo-bot demo

# Debian packages the integration tests run for real: Prometheus and promtool.
# prometheus: the sources' tests; chromium: the SLO page's screenshot test (headless)
test-deps:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v chromium >/dev/null || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends prometheus chromium; }

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: setup test-deps lint
	rm -f $(VENV)/alembic-check.db
	DATABASE_URL=sqlite:///$(VENV)/alembic-check.db $(BIN)/alembic upgrade head
	DATABASE_URL=sqlite:///$(VENV)/alembic-check.db $(BIN)/alembic check
	$(BIN)/pytest -q

# After changing the dependencies in pyproject.toml: re-pin. Pins that still fit stay where they are;
# `make lock LOCK_FLAGS=--upgrade` moves everything to the newest versions that fit.
lock:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q 'uv==0.13.9'
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--quiet $(LOCK_FLAGS) -o constraints.txt

bench: setup test-deps
	$(PY) bench/check_bench.py
