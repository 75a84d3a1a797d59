# Everything a fresh machine needs, from Python 3.11 alone: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test quick install bench clean format

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "fastbp needs Python >= 3.11; $(PYTHON) is older: run make PYTHON=python3.11 ..." >&2; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dask,xlsx]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## The main job: the report's sweep (6 lrs × course weights + 1,000 random inits), then its figures;
## then why the curves look as they do: regimes far past the report's rates, the edge of
## stability, and a 1024 × 1024 trainability map (docs/model.md "Regimes"); then the next
## problem of the course, XOR on a 2-2-1 network: which random starts learn it, and how soon.
demo: $(STAMP)
	rm -rf results/demo results/regimes results/edge results/map results/xor
	$(BIN)/fastbp sweep scripts/demo_sweep.toml --out results/demo
	$(BIN)/python scripts/plot_loss_curves.py results/demo --out results/figures
	$(BIN)/fastbp sweep scripts/demo_regimes.toml --out results/regimes
	$(BIN)/fastbp plot results/regimes --out results/figures --figures regimes
	$(BIN)/fastbp sweep scripts/demo_edge.toml --out results/edge
	$(BIN)/fastbp plot results/edge --out results/figures --figures edge_of_stability
	$(BIN)/fastbp sweep scripts/demo_map.toml --out results/map
	$(BIN)/fastbp plot results/map --out results/figures --figures trainability_map
	$(BIN)/python scripts/regime_onsets.py results/regimes
	$(BIN)/fastbp sweep scripts/demo_xor.toml --out results/xor
	$(BIN)/fastbp plot results/xor --out results/figures/xor --figures reach

## Two pytest workers (pytest-xdist), a test file each at a time (its module fixtures made once):
## the two cores of the machine this is timed on, and twice one process's memory (TEST_WORKERS=1
## for one).
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tests/compile_kernels.py
	$(PYTEST)

## Everything but the slow tests (subprocesses, Dask clusters, compile matrices) and the ones
## that read compiled code (tests/conftest.py lists them): the check to run while working.
quick: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PYTEST) -m "not slow and not codegen"

bench: $(STAMP)
	$(BIN)/python scripts/bench.py --workload all

## Format and lint-fix in place (what make test checks).
format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) results/demo results/regimes results/edge results/map results/xor
