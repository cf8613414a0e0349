# minimind-hf: `make sft` runs the main job, `make test` runs the test suite. Both install into .venv first.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-minimind-hf

# Caches stay inside the repository so runs never depend on (or pollute) the user's home.
export HF_HOME := $(CURDIR)/.cache/huggingface
export TORCH_EXTENSIONS_DIR := $(CURDIR)/.cache/torch_extensions
export TOKENIZERS_PARALLELISM := false

.PHONY: install sft test test-slow bench style quality clean

install: $(STAMP)

# torch is pinned to the CPU build on this disk; an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

sft: $(STAMP)
	$(VENV)/bin/accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
		recipes/sft.py configs/sft_tiny_cpu.yaml

test: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q -m "not slow and not gpu" tests

test-slow: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q -m "slow and not gpu" tests

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
