"""Attention ``"sdpa_packed"``: SDPA over padding-free packed batches, one causal call per packed sequence.

The packing collator concatenates a batch's samples into one row whose ``position_ids`` restart at 0 for every
sample. transformers' ``"sdpa"`` attends within the samples through a block-diagonal mask over the whole row, so its
cost grows with the square of the row (16 samples of ~200 tokens: a 3,200² mask, 16× the work of the samples' own
causal attention). flash-attention's varlen kernel avoids that on GPUs; nothing in torch does on CPU. This function
runs causal attention on each sample's slice instead: the same attention as the block-diagonal mask, at the cost of
the samples alone. Each slice goes to ``torch.nn.functional.scaled_dot_product_attention(is_causal=True)``, except
short samples in bfloat16 or float16 on CPU: there torch's flash kernel, its backward above all, is slower than the
model's eager attention (two matmuls and a float32 softmax), so those take the eager path. One layer's forward and
backward under bf16 autocast on 2 cores (bench/bench_packed_attention.py): the eager path is 1.1-1.5x faster than the
kernel for 16 samples of 64-384 tokens each and 1.5x for 16 samples of 60-340 tokens (the whole minimind2-small
step: 1.04-1.14x in two runs); from ~512 tokens the kernel is as fast or faster, and its memory stays linear in the
length where eager's score matrix is quadratic. Under autocast, query, key and value are cast once per layer call,
not by each sample's matmuls, and the row is cut with ``split``, whose backward is one concatenation (a slice's
backward fills a zero tensor the size of the whole row, per sample). Under ``torch.compile`` the per-sample part
runs eagerly (``attend_per_sample``).

Everything else (padded batches, generation with a cache or a padding mask) goes to transformers' ``"sdpa"``
unchanged, so a model loaded with ``attn_implementation="sdpa_packed"`` behaves as ``"sdpa"`` outside packed
training. The choice is not saved: ``config.json`` never records the attention implementation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, eager_mask, find_packed_sequence_indices, sdpa_mask

from .modeling_minimind import eager_attention_forward

PACKED_SDPA = "sdpa_packed"
EAGER_MAX_LENGTH = 384  # longest sample that takes the eager path (CPU, half precision; see the module docstring)


def packed_sdpa_mask(batch_size, q_length, kv_length, q_offset=0, kv_offset=0, attention_mask=None, **kwargs):
    """No mask where the attention below needs none (no padding mask, no cache: the rows' own ``position_ids`` say
    where each sample starts); transformers' SDPA mask everywhere else."""
    if attention_mask is None and q_offset == 0 and kv_offset == 0 and q_length == kv_length:
        return None
    return sdpa_mask(batch_size, q_length, kv_length, q_offset, kv_offset, attention_mask=attention_mask, **kwargs)


def sample_lengths(position_ids: torch.Tensor) -> list[list[int]] | None:
    """Per row of ``position_ids`` (batch, seq): the lengths of its packed samples, in order; None when no row holds
    more than one sample. Samples are told apart as transformers' SDPA mask tells them
    (`find_packed_sequence_indices`: a new sample wherever the position does not go up by one)."""
    indices = find_packed_sequence_indices(position_ids)
    if indices is None:
        return None
    return [row.unique_consecutive(return_counts=True)[1].tolist() for row in indices]


def eager_bias(query: torch.Tensor, lengths: list[int]) -> torch.Tensor | None:
    """transformers' additive causal mask, (1, 1, n, n) for the longest of the samples' ``lengths`` that takes the
    eager path (a sample slices its top-left corner), or None when none does. Samples up to ``EAGER_MAX_LENGTH``
    tokens take it in bfloat16 or float16 on CPU."""
    if query.device.type != "cpu" or query.dtype not in (torch.bfloat16, torch.float16):
        return None
    longest = max((n for n in lengths if n <= EAGER_MAX_LENGTH), default=0)
    return eager_mask(1, longest, longest, dtype=query.dtype, device=query.device) if longest else None


def autocast_once(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The tensors in autocast's dtype where it is on, cast once for the whole batch rather than by every sample's
    matmuls (rope leaves query and key in float32 under autocast: its cos and sin are float32)."""
    device = tensors[0].device.type
    if not torch.is_autocast_enabled(device):
        return tensors
    dtype = torch.get_autocast_dtype(device)
    return tuple(tensor.to(dtype) for tensor in tensors)


def sample_attention(module, query, key, value, bias, dropout: float, scaling: float | None) -> torch.Tensor:
    """Causal attention over one packed sample, (1, heads, length, head_dim) in, (1, length, heads, head_dim) out:
    the model's eager attention where ``bias`` covers the sample, else torch's SDPA kernel."""
    length = query.shape[2]
    if bias is not None and length <= bias.shape[-1]:
        scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
        mask = bias[..., :length, :length]
        return eager_attention_forward(module, query, key, value, mask, scaling=scaling, dropout=dropout)[0]
    gqa = getattr(module, "num_key_value_groups", 1) > 1
    out = F.scaled_dot_product_attention(
        query, key, value, dropout_p=dropout, is_causal=True, scale=scaling, enable_gqa=gqa
    )
    return out.transpose(1, 2)


def packed_sdpa_attention_forward(
    module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None, **kwargs
):
    """``query`` (batch, heads, seq, head_dim), ``key`` / ``value`` (batch, kv_heads, seq, head_dim); returns the
    output as (batch, seq, heads, head_dim), as every transformers attention function does."""
    position_ids = kwargs.get("position_ids")
    if attention_mask is not None or position_ids is None or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    return attend_per_sample(module, query, key, value, dropout, scaling, **kwargs)


@torch.compiler.disable(reason="one call per packed sample: the samples' number and lengths change every batch")
def attend_per_sample(module, query, key, value, dropout: float, scaling: float | None, **kwargs):
    """Causal attention over each sample that ``kwargs["position_ids"]`` marks in each row. Under ``torch.compile``
    it runs eagerly, the layers around it compiled: compiled, every batch's other sample lengths would recompile it."""
    lengths = sample_lengths(kwargs["position_ids"])
    if lengths is None:  # one sample per row: one causal call over the whole batch
        return sdpa_attention_forward(module, query, key, value, None, dropout, scaling, **kwargs)
    if len(lengths) == 1:
        lengths = lengths * query.shape[0]
    query, key, value = autocast_once(query, key, value)
    bias = eager_bias(query, [n for row in lengths for n in row])
    # split, not slices: a split's backward is one concatenation, each slice's a zero tensor the size of the batch
    rows = []
    for row_lengths, *row in zip(lengths, query.split(1), key.split(1), value.split(1), strict=True):
        samples = zip(*(tensor.split(row_lengths, dim=2) for tensor in row), strict=True)
        rows.append(torch.cat([sample_attention(module, *qkv, bias, dropout, scaling) for qkv in samples], dim=1))
    return torch.cat(rows), None


AttentionInterface.register(PACKED_SDPA, packed_sdpa_attention_forward)
AttentionMaskInterface.register(PACKED_SDPA, packed_sdpa_mask)
