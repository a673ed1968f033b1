# One-command set-up: `make demo` and `make test` create .venv and install everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data
CATALOG ?= demo-catalog
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast test-install lint format eval bench browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip "setuptools<81" wheel
	# torch/torchvision pair that pip takes from this machine's disk
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/artsim nga index $(DATA)/nga/opendata --images-dir $(DATA)/nga/images --catalog $(CATALOG)
	$(BIN)/artsim info $(CATALOG)
	$(BIN)/artsim search $(CATALOG) 1128 -k 5

browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

test: $(STAMP) browser
	$(BIN)/python -m pytest -q tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser" tests

# a fresh venv, `pip install .` alone, then a few paintings indexed with faces (a few minutes)
test-install:
	bash .ci/install_check.sh $(DATA)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

eval: $(STAMP)
	$(BIN)/python benchmarks/make_evaluation.py --data $(DATA)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_index.py --data $(DATA)
	$(BIN)/python benchmarks/bench_query.py

clean:
	rm -rf $(CATALOG) .pytest_cache build
