"""A model folder whose save was cut short (killed or out of disk half-way) is refused as an incomplete save, not
with transformers' errors about sentencepiece / tiktoken or safetensors headers."""

import os

import pytest
from sft_testing import make_base_model

from minimind_hf import MiniMindConfig
from minimind_hf.chat import load_model_for_chat
from minimind_hf.errors import CheckpointError

CONFIG = MiniMindConfig(
    hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128
)


def test_a_save_killed_before_the_tokenizer_is_called_incomplete(tmp_path):
    folder = make_base_model(tmp_path / "final", CONFIG)
    load_model_for_chat(str(folder), device="cpu", dtype="float32")  # whole: loads
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    with pytest.raises(CheckpointError, match=r"final is an incomplete save: the tokenizer files .* are missing"):
        load_model_for_chat(str(folder), device="cpu")


def test_a_weights_file_cut_short_is_called_incomplete(tmp_path):
    folder = make_base_model(tmp_path / "final", CONFIG)
    weights = folder / "model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)
    with pytest.raises(CheckpointError, match="final is an incomplete save: model.safetensors is cut short"):
        load_model_for_chat(str(folder), device="cpu")
