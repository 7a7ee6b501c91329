# Two commands on a fresh machine: `make run` (the main job on the bundled review) and `make test`.
# Each creates .venv and installs the pinned requirements first (CPU-only torch, constraints.txt).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120
export PREFECT_HOME := $(CURDIR)/.prefect

.PHONY: install run test bench clean-outputs

install: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml setup.py $(wildcard pipeline/rules/nlp.py pipeline/rules/prefilter.py pipeline/rules/engine.py pipeline/rules/fastdoc.pyx)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: install
	$(BIN)/review run

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/dedup_bench.py
	$(BIN)/python benchmarks/coding_bench.py

clean-outputs:
	rm -rf outputs/*.csv outputs/*.json outputs/*.xlsx outputs/*.html corpus/review.db
