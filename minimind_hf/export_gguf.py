"""Write a MiniMind checkpoint as one GGUF file for llama.cpp (and Ollama, LM Studio), with llama.cpp's own `gguf`
package: `minimind-hf convert MODEL OUT.gguf --to gguf [--dtype f32|f16|bf16|q8_0]`.

Architectures: minimind-3 -> `qwen3`, minimind-3-moe -> `qwen3moe`, MiniMind2 (no qk-norm) -> `llama`, the same
mapping as `--to qwen3` / `--to llama` (MiniMind2-MoE's shared experts have no slot and are refused there).

Tokenizer: MiniMind's tokenizers are byte-level BPE with GPT-2's pre-tokenizer regex, which is llama.cpp's `gpt-2`
pre-tokenizer (MiniMind's README suggests `qwen2`, whose regex splits digits one by one: different ids). Added
tokens keep their kind: the ChatML markers are control tokens (parsed only with special-token parsing, hidden when
printing), `<think>` and `<tool_call>` are user-defined text tokens, as in transformers. The chat template, bos/eos/pad
and the stop token `<|im_end|>` travel in the file, so llama.cpp's chat mode and Ollama use the model's own template.
"""

import json
from pathlib import Path

import gguf
import numpy as np
import torch

from .errors import CheckpointError

GGUF_DTYPES = {
    "f32": gguf.GGMLQuantizationType.F32,
    "f16": gguf.GGMLQuantizationType.F16,
    "bf16": gguf.GGMLQuantizationType.BF16,
    "q8_0": gguf.GGMLQuantizationType.Q8_0,
}
FILE_TYPES = {
    "f32": gguf.LlamaFileType.ALL_F32,
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "bf16": gguf.LlamaFileType.MOSTLY_BF16,
    "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
}
EXPERT_PROJECTIONS = ("gate_proj", "up_proj", "down_proj")


def gguf_architecture(config) -> gguf.MODEL_ARCH:
    if config.use_moe:
        if config.n_shared_experts or not config.qk_norm:
            raise CheckpointError("MiniMind2-MoE (shared experts, no qk-norm) has no llama.cpp architecture")
        if not config.norm_topk_prob and config.num_experts_per_tok > 1:
            raise CheckpointError("llama.cpp's qwen3moe always renormalises the top-k weights (norm_topk_prob=false)")
        return gguf.MODEL_ARCH.QWEN3MOE
    return gguf.MODEL_ARCH.QWEN3 if config.qk_norm else gguf.MODEL_ARCH.LLAMA


def write_gguf(config, state: dict[str, torch.Tensor], tokenizer, output_path, dtype: str = "f16") -> Path:
    """`state` holds MiniMind names (= Qwen3 / Llama names), one tensor per expert."""
    if dtype not in GGUF_DTYPES:
        raise CheckpointError(f"--dtype for --to gguf must be one of {tuple(GGUF_DTYPES)}, got {dtype!r}")
    if tokenizer is None:
        raise CheckpointError("a GGUF file needs the tokenizer: pass --tokenizer DIR")
    arch = gguf_architecture(config)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(output_path, gguf.MODEL_ARCH_NAMES[arch])
    _write_hparams(writer, config, arch, dtype)
    _write_tokenizer(writer, tokenizer, config.vocab_size)
    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    for name, tensor in _hf_tensors(config, state, arch):
        gguf_name = names.get_name(name, try_suffixes=(".weight",))
        if gguf_name is None:
            raise CheckpointError(f"no GGUF name for tensor {name}")
        data = tensor.to(torch.float32).numpy()
        # 1-D tensors (norms) stay f32, as llama.cpp's converter keeps them; so do rows q8_0 blocks cannot tile.
        qtype = GGUF_DTYPES[dtype] if data.ndim > 1 else gguf.GGMLQuantizationType.F32
        if qtype == gguf.GGMLQuantizationType.Q8_0 and data.shape[-1] % 32:
            qtype = gguf.GGMLQuantizationType.F16
        if qtype == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(gguf_name, data)
        elif qtype == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(gguf_name, data.astype(np.float16))
        else:
            writer.add_tensor(gguf_name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return output_path


def _write_hparams(writer, config, arch, dtype) -> None:
    writer.add_name("MiniMind")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_key_length(config.head_dim)
    writer.add_value_length(config.head_dim)
    writer.add_rope_dimension_count(config.head_dim)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(FILE_TYPES[dtype])
    rope = config.rope_parameters
    writer.add_rope_freq_base(rope["rope_theta"])
    if rope.get("rope_type", "default") != "default":
        # MiniMind's YaRN keeps cos/sin unscaled (attention_factor 1); llama.cpp derives its own YaRN magnitude
        # scaling. Not verified to agree, so refused rather than written possibly wrong.
        raise CheckpointError(
            f"rope_type {rope['rope_type']!r} (inference_rope_scaling) is not supported in GGUF yet; export the model "
            "without it (--set inference_rope_scaling=false) and set llama.cpp's --rope-scaling yarn yourself"
        )
    if arch == gguf.MODEL_ARCH.QWEN3MOE:
        writer.add_expert_count(config.num_experts)
        writer.add_expert_used_count(config.num_experts_per_tok)
        writer.add_expert_feed_forward_length(config.moe_intermediate_size)


def _write_tokenizer(writer, tokenizer, n_vocab: int) -> None:
    backend = tokenizer.backend_tokenizer
    vocab = backend.get_vocab(with_added_tokens=True)
    added = tokenizer.added_tokens_decoder
    by_id = {index: token for token, index in vocab.items()}
    tokens, types = [], []
    for index in range(n_vocab):
        if index not in by_id:  # an embedding row no token uses
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        elif index in added:
            tokens.append(added[index].content)
            types.append(gguf.TokenType.CONTROL if added[index].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[index])
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    # The merges as the backend holds them ("a b", the form llama.cpp reads), so a tokenizer built in memory works too.
    writer.add_token_merges([" ".join(pair) for pair in json.loads(backend.to_str())["model"]["merges"]])
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")  # chat turns end there, whatever eos_token says
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(im_end)
    writer.add_eot_token_id(im_end)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_add_bos_token(False)  # MiniMind's tokenizers add neither
    writer.add_add_eos_token(False)
    writer.add_chat_template(tokenizer.chat_template)


def _hf_tensors(config, state, arch):
    """(transformers name, tensor) in the layout llama.cpp's converter would read from the Qwen3 / Llama export."""
    for name, tensor in state.items():
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue  # llama.cpp falls back to the token embedding
        if ".mlp.experts." in name:
            continue
        if arch == gguf.MODEL_ARCH.LLAMA and name.endswith(("self_attn.q_proj.weight", "self_attn.k_proj.weight")):
            heads = config.num_attention_heads if ".q_proj" in name else config.num_key_value_heads
            tensor = _interleave_rotary(tensor, heads)
        yield name, tensor
    if arch == gguf.MODEL_ARCH.QWEN3MOE:
        for layer in range(config.num_hidden_layers):
            prefix = f"model.layers.{layer}.mlp.experts"
            for proj in EXPERT_PROJECTIONS:
                stacked = torch.stack([state[f"{prefix}.{e}.{proj}.weight"] for e in range(config.num_experts)])
                yield f"{prefix}.{proj}.weight", stacked


def _interleave_rotary(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """llama.cpp's `llama` rotates interleaved pairs; transformers' Llama rotates halves: reorder the q/k rows so both
    compute the same (llama.cpp's converter does the same permutation)."""
    return (
        weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )
