# vclip: the two commands of the README.
#   make demo   set up .venv, generate the default synthetic data, run every notebook with papermill
#   make test   set up .venv, then ruff and lint-imports, the unit tests, the slow/distributed tests, and nbval
# Both are idempotent: the venv is reinstalled only when pyproject.toml changes, the data only
# when it is missing.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.vclip-installed
DATA   := data/generated/synthetic
TIMED  := bash .ci/timed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export MPLBACKEND := Agg
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: demo test install data lint unit slow notebooks bench clean

demo: install data
	$(PY) -m vclip.notebooks run --out runs/notebooks

test: install data lint unit slow notebooks

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(TIMED) "install" sh -c '$(PY) -m pip install --quiet --upgrade pip && $(PY) -m pip install --quiet -e ".[dev]" && $(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null'
	@touch $(STAMP)

data: install
	@test -f $(DATA)/WORLD.json || $(TIMED) "generate synthetic data" $(PY) -m vclip.synthetic --out $(DATA)

lint: install
	$(TIMED) "ruff" $(PY) -m ruff check vclip tests benchmarks
	$(TIMED) "import floors (lint-imports)" $(VENV)/bin/lint-imports

unit: install
	$(TIMED) "unit tests" $(PY) -m pytest -q -m "not slow and not distributed and not notebook"

slow: install
	$(TIMED) "slow and distributed tests" $(PY) -m pytest -q -m "(slow or distributed) and not notebook"

# The committed outputs were recorded with the CPU's own kernels and one torch thread (setup_notebook). The check
# runs under ATen's plain kernels and two threads, so on every machine it runs under another kernel path than the
# recording: cells printing torch floats carry "# NBVAL_IGNORE_OUTPUT" and their claims are check(...) lines
# (docs/notebooks.md, "How the notebook check stays portable").
NBVAL_ENV := ATEN_CPU_CAPABILITY=default VCLIP_NOTEBOOK_THREADS=2 OMP_WAIT_POLICY=PASSIVE

notebooks: install data
	$(TIMED) "notebooks (nbval)" env $(NBVAL_ENV) $(PY) -m pytest -q --nbval notebooks --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider

bench: install data
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs data/generated
