# Quick start: `make demo`, `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint chromium gui bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/csunet demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

# the report test opens an HTML report in headless Chromium; this installs Debian's package when missing
chromium:
	@bash tests/ensure_chromium.sh

# the napari plugin's tests run Qt on a virtual screen; this installs Debian's Xvfb and Qt's X libraries
gui:
	@bash tests/ensure_gui.sh

# one worker per logical core (at most 4), each with its share of the cores (tests/conftest.py)
test: lint chromium gui
	$(BIN)/python -m pytest --numprocesses logical --maxprocesses 4 --dist worksteal

# all benchmarks, or some: make bench BENCH=speed
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
