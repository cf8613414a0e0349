"""Bench prototype (not in minimind_hf): SDPA run per sequence of a packed row, registered as attention "sdpa_packed"."""

from __future__ import annotations


def register_packed_sdpa() -> None:
    """Prototype attention "sdpa_packed": SDPA run per sequence of a padding-free packed row (position_ids restarting
    at 0), instead of one SDPA over the whole row with a block-diagonal mask, whose cost grows with the square of the
    row length. Everything else (padded batches, generation with a cache) goes to transformers' sdpa."""
    import torch
    import torch.nn.functional as F
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    def sdpa_packed(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
        position_ids = kwargs.get("position_ids")
        if position_ids is None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
            return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
        starts = (position_ids[0] == 0).nonzero().flatten().tolist()
        if len(starts) < 2 or starts[0] != 0:
            return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
        key, value = repeat_kv(key, module.num_key_value_groups), repeat_kv(value, module.num_key_value_groups)
        bounds = zip(starts, [*starts[1:], query.shape[2]], strict=True)
        out = [
            F.scaled_dot_product_attention(
                query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], dropout_p=dropout, is_causal=True, scale=scaling
            )
            for a, b in bounds
        ]
        return torch.cat(out, dim=2).transpose(1, 2).contiguous(), None

    AttentionInterface.register("sdpa_packed", sdpa_packed)
    AttentionMaskInterface.register("sdpa_packed", ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])
