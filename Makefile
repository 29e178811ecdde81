.PHONY: install check test lint format

install:
	python3 -m pip install -q -e '.[dev]'

lint:
	ruff check rtp tests

format:
	ruff format rtp tests && ruff check --fix rtp tests

# `make test` is the README's test command: install, then the whole suite.
test: install
	python3 -m pytest -q

check: lint test
