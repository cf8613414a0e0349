"""Shared test setup: never touch the network, keep every HF cache inside the repo, tiny model configs."""

import os
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[1]

# Set before transformers / datasets / huggingface_hub are imported by any test module.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HOME"] = str(REPO_DIR / ".cache" / "huggingface")
# Tiny models gain nothing from intra-op threads, and on the shared 2-core box spinning OpenMP threads made the suite
# 5x slower under load (64 s vs 13 s). Subprocesses inherit the variable; set OMP_NUM_THREADS to override.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

from minimind_hf import MiniMindConfig  # noqa: E402  (after the environment is fixed)


@pytest.fixture
def tiny_config() -> MiniMindConfig:
    """Dense minimind-3-shaped model: hidden 64, 2 layers, 4 heads / 2 kv, qk-norm. vocab 6400 so the real MiniMind
    tokenizers can feed it; the embedding is still only 0.4M parameters."""
    return MiniMindConfig(
        vocab_size=6400,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
    )


@pytest.fixture
def tiny_moe_config(tiny_config) -> MiniMindConfig:
    """minimind-3-MoE-shaped version of `tiny_config`: 4 experts, top-1, batch-level aux loss."""
    return MiniMindConfig(**{**tiny_config.to_dict(), "use_moe": True, "moe_intermediate_size": 64})
