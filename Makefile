# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/*/pyproject.toml plugins/*/setup.cfg)
PLUGIN_DIRS := $(sort $(dir $(PLUGINS)))
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test install chromium lint format bench clean

$(BIN)/pointbridge: setup.cfg pyproject.toml $(PLUGINS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,postgres]" $(foreach dir,$(PLUGIN_DIRS),-e $(dir))
	touch $@

install: $(BIN)/pointbridge

# The console's browser tests drive Debian's chromium through Playwright (never a browser
# Playwright downloads): installed only where it is missing and apt-get exists.
chromium:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

run: install
	$(BIN)/pointbridge db upgrade
	$(BIN)/pointbridge run --host $(HOST) --port $(PORT)

test: install chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/delivery.py
	$(BIN)/python bench/expiry.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/import.py
	$(BIN)/python bench/floors.py

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
