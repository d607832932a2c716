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

# one test worker per core this machine lets us use (at most 4; a container may see more cores than it may use),
# each with its share of the cores (tests/conftest.py)
WORKERS = $(shell $(PYTHON) -c "import os; n = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count(); print(max(1, min(4, n or 1)))")

test: lint chromium gui
	$(BIN)/python -m pytest --numprocesses $(WORKERS) --dist worksteal

# all benchmarks, or some: make bench BENCH=speed
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
