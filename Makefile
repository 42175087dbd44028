# Two commands do all the set-up on a fresh machine:
#   make repro   -> venv + install + quick reproduction (figures/ and results/)
#   make test    -> venv + install + the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SHARED_DATA := $(abspath ../shared/data)
export LATENTDIST_DATA ?= $(if $(wildcard $(SHARED_DATA)/mnist),$(SHARED_DATA),)
export MPLBACKEND ?= Agg

.PHONY: setup test test-fast repro repro-full lint bench dist clean

$(BIN)/activate: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# constraints.txt pins the CPU torch wheel so nothing pulls CUDA packages.
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(BIN)/activate

setup: $(BIN)/activate

test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow" -n 2 --dist loadfile

repro: setup
	$(BIN)/latentdist repro --quick

repro-full: setup
	$(BIN)/latentdist repro --full

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python benchmarks/distances.py --quick
	$(BIN)/python benchmarks/ensemble.py
	$(BIN)/python benchmarks/assignment.py
	$(BIN)/python benchmarks/complexity.py
	$(BIN)/python benchmarks/dae_pipeline.py

dist: setup
	rm -rf dist
	$(BIN)/python -m build --outdir dist
	$(BIN)/python -m twine check --strict dist/*

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis dist build
