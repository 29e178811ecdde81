.PHONY: install check test lint format dev bench bench-quick

install:
	python3 -m pip install -q -e '.[dev]'

lint:
	ruff check rtp tests bench
	ruff format --check rtp tests bench examples
	lint-imports  # the layers contract in pyproject.toml
	mypy

format:
	ruff format rtp tests bench && ruff check --fix rtp tests bench

# `make dev` is the README's main command: the root project on embedded ClickHouse.
dev: install
	rtp dev

# `make test` is the README's test command: install, then the whole suite.
test: install
	python3 -m pytest -q

check: lint test

# Benchmarks against the raw engine (see BENCHMARKS.md); never a pass/fail gate.
bench: install
	python3 -m bench

bench-quick: install
	python3 -m bench --quick
