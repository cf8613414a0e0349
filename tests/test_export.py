"""What exports carry for other consumers (fast checks; the real runtimes run in tests/interop, make test-interop):
transformers 4 field names in --to qwen3/llama folders, the GGUF file's metadata, tensors and refusals."""

import json

import gguf
import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from minimind_hf import BUNDLED_TOKENIZER_DIR, MiniMindConfig, MiniMindForCausalLM
from minimind_hf.convert import convert, main
from minimind_hf.errors import CheckpointError
from minimind_hf.generation import configure_generation

TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(BUNDLED_TOKENIZER_DIR)


def saved_model(folder, tokenizer, **fields):
    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig(**TINY, **fields))
    configure_generation(model, tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model


@pytest.mark.parametrize("fields, target", [({}, "qwen3"), ({"qk_norm": False}, "llama")])
def test_export_folder_carries_transformers4_fields(tmp_path, tokenizer, fields, target):
    saved_model(tmp_path / "hf", tokenizer, **fields)
    out = convert(tmp_path / "hf", tmp_path / "out", target)
    config = json.loads((out / "config.json").read_text())
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"] == 1e6 and "rope_scaling" not in config
    tok_config = json.loads((out / "tokenizer_config.json").read_text())
    assert tok_config["tokenizer_class"] == "PreTrainedTokenizerFast"  # "TokenizersBackend" does not exist in 4.x
    assert tok_config["additional_special_tokens"][0] == "<|object_ref_start|>"  # 4.x wants a dict under extra_...
    assert "extra_special_tokens" not in tok_config
    reloaded = AutoTokenizer.from_pretrained(out)  # and transformers 5 reads it back the same
    assert reloaded.all_special_ids == tokenizer.all_special_ids and reloaded.chat_template == tokenizer.chat_template
    text = "<|im_start|>user\n你好 12345<|im_end|><think>\n"
    assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"]


def test_yarn_export_writes_rope_scaling(tmp_path, tokenizer):
    saved_model(tmp_path / "hf", tokenizer, inference_rope_scaling=True)
    config = json.loads((convert(tmp_path / "hf", tmp_path / "out", "qwen3") / "config.json").read_text())
    assert config["rope_scaling"]["type"] == config["rope_scaling"]["rope_type"] == "yarn"
    assert config["rope_scaling"]["factor"] == 16.0 and config["rope_theta"] == 1e6
    with pytest.raises(CheckpointError, match="not supported in GGUF"):
        convert(tmp_path / "hf", tmp_path / "m.gguf", "gguf")


@pytest.mark.parametrize(
    "fields, arch",
    [({}, "qwen3"), ({"qk_norm": False}, "llama"),
     ({"use_moe": True, "num_experts": 4, "num_experts_per_tok": 1, "moe_intermediate_size": 64}, "qwen3moe")],
)  # fmt: skip
def test_gguf_metadata_and_tensors(tmp_path, tokenizer, fields, arch):
    model = saved_model(tmp_path / "hf", tokenizer, **fields)
    path = convert(tmp_path / "hf", tmp_path / "m.gguf", "gguf", dtype="f32")
    reader = gguf.GGUFReader(path)
    field = {name: reader.fields[name].contents() for name in reader.fields}
    assert field["general.architecture"] == arch
    assert (field["tokenizer.ggml.model"], field["tokenizer.ggml.pre"]) == ("gpt2", "gpt-2")
    assert field["tokenizer.chat_template"] == tokenizer.chat_template
    assert (field["tokenizer.ggml.eos_token_id"], field["tokenizer.ggml.eot_token_id"]) == (2, 2)
    assert field["tokenizer.ggml.add_bos_token"] is False and field[f"{arch}.rope.freq_base"] == 1e6
    types = field["tokenizer.ggml.token_type"]
    assert types[1] == gguf.TokenType.CONTROL and types[25] == gguf.TokenType.USER_DEFINED  # <|im_start|>, <think>
    assert len(field["tokenizer.ggml.tokens"]) == 6400 and field["tokenizer.ggml.tokens"][25] == "<think>"
    tensors = {t.name: t for t in reader.tensors}
    assert "output.weight" not in tensors  # tied: llama.cpp reuses token_embd
    embed = model.model.embed_tokens.weight.detach().numpy()
    np.testing.assert_array_equal(np.asarray(tensors["token_embd.weight"].data), embed)
    if arch == "qwen3moe":
        assert tuple(tensors["blk.0.ffn_gate_exps.weight"].shape) == (64, 64, 4)  # GGUF lists dims reversed
    if arch == "llama":  # q rows reordered for llama.cpp's interleaved rotary; v untouched
        q = model.model.layers[0].self_attn.q_proj.weight.detach().numpy()
        assert not np.array_equal(np.asarray(tensors["blk.0.attn_q.weight"].data), q)
        assert sorted(map(tuple, np.asarray(tensors["blk.0.attn_q.weight"].data))) == sorted(map(tuple, q))


def test_gguf_dtypes_and_refusals(tmp_path, tokenizer):
    saved_model(tmp_path / "hf", tokenizer)
    for dtype, expected in (("q8_0", gguf.GGMLQuantizationType.Q8_0), ("bf16", gguf.GGMLQuantizationType.BF16),
                            ("auto", gguf.GGMLQuantizationType.F16)):  # fmt: skip
        main([str(tmp_path / "hf"), str(tmp_path / f"{dtype}.gguf"), "--to", "gguf", "--dtype", dtype])
        tensors = {t.name: t for t in gguf.GGUFReader(tmp_path / f"{dtype}.gguf").tensors}
        assert tensors["blk.0.attn_q.weight"].tensor_type == expected
        assert tensors["blk.0.attn_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    with pytest.raises(CheckpointError, match="--to gguf writes one .gguf file"):
        main([str(tmp_path / "hf"), str(tmp_path / "m.bin"), "--to", "gguf"])
    with pytest.raises(CheckpointError, match="is a GGUF type"):
        main([str(tmp_path / "hf"), str(tmp_path / "q"), "--to", "qwen3", "--dtype", "q8_0"])
