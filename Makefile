.PHONY: install check test lint format dev

install:
	python3 -m pip install -q -e '.[dev]'

lint:
	ruff check rtp tests

format:
	ruff format rtp tests && ruff check --fix rtp tests

# `make dev` is the README's main command: the root project on embedded ClickHouse.
dev: install
	rtp dev

# `make test` is the README's test command: install, then the whole suite.
test: install
	python3 -m pytest -q

check: lint test
