# Two commands on a fresh machine: `make demo` and `make test`. Both create the
# virtualenv .venv/ at the repo root if it is missing and install the project.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Under load, torch (and XLA's CPU client) with 2 threads ran 2.5-11x slower than with 1
# on the 2-core machines we develop and test on.
export OMP_NUM_THREADS ?= 1
export TABPFN_DISABLE_TELEMETRY := 1
export HF_HUB_OFFLINE ?= 1

.PHONY: demo test test-all install lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# Pin the CPU torch first so that no dependency pulls a multi-GB CUDA build.
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[all,test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/causalmixft demo

test: $(STAMP)
	$(PY) -m pytest -m "not slow and not gpu" -q

test-all: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check jaxscm bridge finetune benchmarks tests

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
