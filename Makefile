# `make demo` and `make test` are the README's two commands; both set everything up first.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test lint test-deps bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/slo-bot demo

# Debian packages the integration tests run for real: Prometheus and promtool.
test-deps:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends prometheus; }

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: setup test-deps lint
	rm -f $(VENV)/alembic-check.db
	DATABASE_URL=sqlite:///$(VENV)/alembic-check.db $(BIN)/alembic upgrade head
	DATABASE_URL=sqlite:///$(VENV)/alembic-check.db $(BIN)/alembic check
	$(BIN)/pytest -q

bench: setup test-deps
	$(PY) bench/check_bench.py
