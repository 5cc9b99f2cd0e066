# Two commands for a fresh machine (python3, pip, node and npm are all it needs):
#   make synth   set up, then synthesize the example app (cdk.out/)
#   make test    set up, then lint, type-check and run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Node 22 and the CDK CLI come from package.json; put them (and the venv) first on PATH so jsii,
# the CLI and the tests never run on the machine's Node 20.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)

# CPython 3.14, the Lambda's Python, runs here as Pyodide (WebAssembly) under that Node 22.
PY314 := $(PY) tools/py314/py314.py

.PHONY: setup synth test lint typecheck pytest test-py314 py314-site bytecode dist bench mutation clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

synth: setup bytecode
	cdk synth

# The runtime compiled by CPython 3.14 for the Lambda asset (skipped when up to date).
bytecode: setup
	$(PY314) bytecode

# The wheel (dist/), carrying that bytecode.
dist: setup bytecode
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation -w dist .

# Pure-Python wheels for the runtime's tests on 3.14, downloaded once into .cache/py314.
py314-site: setup
	$(PY314) site

lint: setup
	ruff check .
	ruff format --check .

typecheck: setup
	mypy constructs/cdk_ses_bounce runtime/bounce_runtime tools/py314

pytest: setup bytecode py314-site
	pytest

# The runtime's tests again, on CPython 3.14 (what Pyodide cannot run is listed in the runner).
test-py314: py314-site
	$(PY314) tests

test: lint typecheck pytest test-py314

# The benchmarks measure the asset as shipped (with its 3.14 bytecode); bytecode.py runs on 3.14.
bench: setup bytecode py314-site
	$(PY) bench/run_all.py

# Mutation testing (mutmut, configured in pyproject.toml) of the runtime's core, SES sender,
# processor and workflow against tests/runtime. Slow (14 min on 2 idle cores, 40 busy), so not part
# of `make test` or CI; CONTRIBUTING.md says how to read it. It runs in build/mutation/, where
# bounce_runtime/ is a top-level package, and keeps its results there: a later run tests only
# the mutants of changed functions, then every survivor and untested mutant again (new tests
# may kill them).
# MUTATION_FRESH=1 starts from scratch (a figure no earlier run can colour).
# MUTATION_SCOPE='bounce_runtime.processor* bounce_runtime.workflow*' tests only those mutants.
MUTATION_DIR := build/mutation
MUTATION_CHILDREN ?= 2
MUTATION_SCOPE ?=
mutation: setup
	$(if $(MUTATION_FRESH),rm -rf $(MUTATION_DIR))
	mkdir -p $(MUTATION_DIR)
	ln -sfn ../../runtime/bounce_runtime $(MUTATION_DIR)/bounce_runtime
	ln -sfn ../../tests $(MUTATION_DIR)/tests
	ln -sfn ../../pyproject.toml $(MUTATION_DIR)/pyproject.toml
	rm -rf $(MUTATION_DIR)/mutants/tests
	cd $(MUTATION_DIR) && CI=true mutmut run --max-children $(MUTATION_CHILDREN) $(MUTATION_SCOPE)
	cd $(MUTATION_DIR) && survivors=$$(mutmut results | sed -nE 's/^ *(.*): (survived|no tests)$$/\1/p') && \
	  if [ -n "$$survivors" ]; then CI=true mutmut run --max-children $(MUTATION_CHILDREN) $$survivors; fi
	cd $(MUTATION_DIR) && mutmut results

clean:
	rm -rf cdk.out build dist .mypy_cache .ruff_cache .hypothesis
	rm -rf constructs/cdk_ses_bounce/runtime-bytecode
