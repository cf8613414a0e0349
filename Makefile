# minimind-hf: `make sft` runs the main job, `make pretrain` builds a base model from scratch, `make test` runs the test
# suite. All install into .venv first. ARGS reach the recipe (`make pretrain ARGS="--output_dir /tmp/run"`),
# PYTEST_ARGS reach pytest (`make test PYTEST_ARGS="-k convert"`).
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-minimind-hf
ARGS ?=
PYTEST_ARGS ?=
ACCELERATE_CPU := $(VENV)/bin/accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no

# Caches stay inside the repository so runs never depend on (or pollute) the user's home.
export HF_HOME := $(CURDIR)/.cache/huggingface
export TORCH_EXTENSIONS_DIR := $(CURDIR)/.cache/torch_extensions
export TOKENIZERS_PARALLELISM := false

.PHONY: install sft pretrain test test-slow bench style quality clean

install: $(STAMP)

# torch is pinned to the CPU build on this disk; an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

sft: $(STAMP)
	$(ACCELERATE_CPU) recipes/sft.py configs/sft_tiny_cpu.yaml $(ARGS)

pretrain: $(STAMP)
	$(ACCELERATE_CPU) recipes/pretrain.py configs/pretrain_tiny_cpu.yaml $(ARGS)

test: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q -m "not slow and not gpu" tests $(PYTEST_ARGS)

# pytest exits 5 when no test is selected (e.g. every slow test deselected by PYTEST_ARGS): nothing failed.
test-slow: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q -m "slow and not gpu" tests $(PYTEST_ARGS) || [ $$? -eq 5 ]

bench: $(STAMP)
	$(PY) bench/run.py --out docs/benchmarks.md

style: $(STAMP)
	$(VENV)/bin/ruff format minimind_hf recipes tests bench
	$(VENV)/bin/ruff check --fix minimind_hf recipes tests bench

quality: $(STAMP)
	$(VENV)/bin/ruff check minimind_hf recipes tests bench
	$(VENV)/bin/ruff format --check minimind_hf recipes tests bench

clean:
	rm -rf $(VENV) .cache outputs
