# The two commands of the README: `make run` and `make test`. Each creates or refreshes .venv.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.joinedup-installed

.PHONY: run test bench airflow clean

$(STAMP): pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[test,bench]'
	@touch $(STAMP)

## run: the nightly sync of the synthetic council into the MCI, through Airflow
run: $(STAMP)
	$(BIN)/joinedup run

## test: the whole test suite (uses PostgreSQL too when one is reachable), on TEST_WORKERS
## pytest-xdist workers; each module runs whole on one worker, so its shared fixtures are built once
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

## bench: the benchmarks in benchmarks/, figures appended to docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/python -m benchmarks

## airflow: airflow standalone with JoinedUp's DAGs, to click through at http://127.0.0.1:8080
airflow: $(STAMP)
	$(BIN)/joinedup airflow standalone

clean:
	rm -rf var $(VENV)
