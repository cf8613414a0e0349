"""MiniMind decoder (dense and MoE) on transformers 5 primitives, with MiniMind's weight names.

Only torch, transformers and the sibling configuration file are imported, so `register_for_auto_class` can ship this
file next to a checkpoint for `trust_remote_code=True` loading.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, MoeCausalLMOutputWithPast
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS, dynamic_rope_update
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .configuration_minimind import MiniMindConfig


@dataclass
class MiniMindModelOutputWithPast(BaseModelOutputWithPast):
    """`BaseModelOutputWithPast` plus the summed, coefficient-weighted MoE load-balancing loss (None when dense)."""

    aux_loss: torch.FloatTensor | None = None


class MiniMindRMSNorm(nn.Module):
    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        # Normalise and scale in float32 (as MiniMind does), then cast back: bf16 squares lose too much precision.
        x = hidden_states.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return (self.weight.float() * x).to(hidden_states.dtype)

    def extra_repr(self):
        return f"{tuple(self.weight.shape)}, eps={self.variance_epsilon}"


class MiniMindMLP(nn.Module):
    def __init__(self, config: MiniMindConfig, intermediate_size: int | None = None):
        super().__init__()
        intermediate_size = intermediate_size or config.intermediate_size
        self.gate_proj = nn.Linear(config.hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, config.hidden_size, bias=False)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class MiniMindSparseMoeBlock(nn.Module):
    """Softmax router over `num_experts`, top-k (renormalised if `norm_topk_prob`), plus always-on shared experts.

    Returns the output and the weighted load-balancing loss (`router_aux_loss_coef · aux`; zero outside training, as in
    MiniMind). `aux_loss_type="batch"` is minimind-3's `E · Σ_e load_e · mean_prob_e` over all tokens of the batch
    (load_e = fraction of tokens that picked e, summed over the k slots); `"sequence"` is MiniMind2's DeepSeek-style
    loss: the same product per sequence with load normalised by `seq_len · k / E`, averaged over sequences.
    """

    def __init__(self, config: MiniMindConfig):
        super().__init__()
        self.num_experts, self.top_k = config.num_experts, config.num_experts_per_tok
        self.norm_topk_prob = config.norm_topk_prob
        self.aux_loss_coef, self.aux_loss_type = config.router_aux_loss_coef, config.aux_loss_type
        self.gate = nn.Linear(config.hidden_size, config.num_experts, bias=False)
        size = config.moe_intermediate_size
        self.experts = nn.ModuleList(MiniMindMLP(config, size) for _ in range(config.num_experts))
        if config.n_shared_experts > 0:  # MiniMind2-MoE: experts every token goes through
            self.shared_experts = nn.ModuleList(MiniMindMLP(config, size) for _ in range(config.n_shared_experts))

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch_size, seq_len, hidden_size = hidden_states.shape
        x = hidden_states.reshape(-1, hidden_size)
        router_probs = F.softmax(self.gate(x), dim=-1, dtype=torch.float32)
        topk_weight, topk_idx = torch.topk(router_probs, self.top_k, dim=-1)
        if self.norm_topk_prob:
            topk_weight = topk_weight / (topk_weight.sum(dim=-1, keepdim=True) + 1e-20)

        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            token_idx, slot = torch.where(topk_idx == e)
            if token_idx.numel() > 0:
                weight = topk_weight[token_idx, slot, None]
                out.index_add_(0, token_idx, (expert(x[token_idx]) * weight).to(out.dtype))
            elif self.training:
                # Keep idle experts in the graph so DDP without find_unused_parameters still gets their (zero) grads.
                out = out + 0.0 * sum(p.sum() for p in expert.parameters())
        for expert in getattr(self, "shared_experts", []):
            out = out + expert(x)

        aux_loss = router_probs.new_zeros(())
        if self.training and self.aux_loss_coef > 0:
            if self.aux_loss_type == "sequence":
                counts = F.one_hot(topk_idx.view(batch_size, -1), self.num_experts).sum(1).float()
                load = counts * self.num_experts / (seq_len * self.top_k)
                mean_probs = router_probs.view(batch_size, seq_len, -1).mean(1)
                aux_loss = (load * mean_probs).sum(-1).mean()
            else:
                load = F.one_hot(topk_idx, self.num_experts).float().mean(0).sum(0)
                aux_loss = (load * router_probs.mean(0)).sum() * self.num_experts
            aux_loss = aux_loss * self.aux_loss_coef
        return out.view(batch_size, seq_len, hidden_size), aux_loss


class MiniMindRotaryEmbedding(nn.Module):
    def __init__(self, config: MiniMindConfig):
        super().__init__()
        self.config = config
        self.max_seq_len_cached = self.original_max_seq_len = config.max_position_embeddings
        self.rope_type = config.rope_parameters["rope_type"]
        rope_init_fn: Callable = self.compute_default_rope_parameters
        if self.rope_type != "default":
            rope_init_fn = ROPE_INIT_FUNCTIONS[self.rope_type]
        inv_freq, self.attention_scaling = rope_init_fn(config)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.register_buffer("original_inv_freq", inv_freq.clone(), persistent=False)

    @staticmethod
    def compute_default_rope_parameters(config: MiniMindConfig, device=None, **kwargs) -> tuple[torch.Tensor, float]:
        base, dim = config.rope_parameters["rope_theta"], config.head_dim
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, device=device, dtype=torch.float) / dim))
        return inv_freq, 1.0

    @torch.no_grad()
    @dynamic_rope_update
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = position_ids[..., None].float() * self.inv_freq.to(device=x.device, dtype=torch.float)
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * self.attention_scaling).to(x.dtype), (emb.sin() * self.attention_scaling).to(x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim: int = 1):
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


def repeat_kv(hidden_states: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(batch, kv_heads, seq, head_dim) -> (batch, kv_heads * n_rep, seq, head_dim)."""
    if n_rep == 1:
        return hidden_states
    batch, num_key_value_heads, slen, head_dim = hidden_states.shape
    hidden_states = hidden_states[:, :, None].expand(batch, num_key_value_heads, n_rep, slen, head_dim)
    return hidden_states.reshape(batch, num_key_value_heads * n_rep, slen, head_dim)


def eager_attention_forward(module, query, key, value, attention_mask, scaling: float, dropout: float = 0.0, **kwargs):
    key_states = repeat_kv(key, module.num_key_value_groups)
    value_states = repeat_kv(value, module.num_key_value_groups)
    attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value_states).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class MiniMindAttention(nn.Module):
    def __init__(self, config: MiniMindConfig, layer_idx: int):
        super().__init__()
        self.config, self.layer_idx = config, layer_idx
        self.head_dim = config.head_dim
        self.num_key_value_groups = config.num_attention_heads // config.num_key_value_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.dropout
        self.is_causal = True
        self.q_proj = nn.Linear(config.hidden_size, config.num_attention_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, config.num_key_value_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, config.num_key_value_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(config.num_attention_heads * self.head_dim, config.hidden_size, bias=False)
        if config.qk_norm:
            self.q_norm = MiniMindRMSNorm(self.head_dim, eps=config.rms_norm_eps)
            self.k_norm = MiniMindRMSNorm(self.head_dim, eps=config.rms_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None,
        past_key_values: Cache | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        query = self.q_proj(hidden_states).view(hidden_shape)
        key = self.k_proj(hidden_states).view(hidden_shape)
        value = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        if self.config.qk_norm:
            query, key = self.q_norm(query), self.k_norm(key)
        query, key = apply_rotary_pos_emb(query.transpose(1, 2), key.transpose(1, 2), *position_embeddings)
        if past_key_values is not None:
            key, value = past_key_values.update(key, value, self.layer_idx)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        dropout = self.attention_dropout if self.training else 0.0
        attn_output, attn_weights = attention_interface(
            self, query, key, value, attention_mask, dropout=dropout, scaling=self.scaling, **kwargs
        )
        attn_output = self.o_proj(attn_output.reshape(*input_shape, -1).contiguous())
        return F.dropout(attn_output, p=self.attention_dropout, training=self.training), attn_weights


class MiniMindDecoderLayer(GradientCheckpointingLayer):
    def __init__(self, config: MiniMindConfig, layer_idx: int):
        super().__init__()
        self.self_attn = MiniMindAttention(config, layer_idx)
        self.mlp = MiniMindSparseMoeBlock(config) if config.use_moe else MiniMindMLP(config)
        self.input_layernorm = MiniMindRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = MiniMindRMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        past_key_values: Cache | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        residual = hidden_states
        hidden_states, _ = self.self_attn(
            self.input_layernorm(hidden_states), position_embeddings, attention_mask, past_key_values, **kwargs
        )
        hidden_states = residual + hidden_states
        mlp_output = self.mlp(self.post_attention_layernorm(hidden_states))
        aux_loss = None
        if isinstance(mlp_output, tuple):
            mlp_output, aux_loss = mlp_output
        return hidden_states + mlp_output, aux_loss


class MiniMindPreTrainedModel(PreTrainedModel):
    config_class = MiniMindConfig
    config: MiniMindConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["MiniMindDecoderLayer"]
    _skip_keys_device_placement = ["past_key_values"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True


class MiniMindModel(MiniMindPreTrainedModel):
    def __init__(self, config: MiniMindConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([MiniMindDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = MiniMindRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = MiniMindRotaryEmbedding(config)
        self.gradient_checkpointing = False
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> MiniMindModelOutputWithPast:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Specify exactly one of input_ids or inputs_embeds")
        if use_cache is None:
            use_cache = self.config.use_cache and not self.training
        if self.gradient_checkpointing and self.training:
            use_cache = False
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)

        past_seen_tokens = past_key_values.get_seq_length() if past_key_values is not None else 0
        if position_ids is None:
            position_ids = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device) + past_seen_tokens
            position_ids = position_ids.unsqueeze(0)
        # Build the mask before creating a fresh cache: with no cache, transformers detects packed sequences
        # (position_ids restarting at 0 and no attention_mask) and blocks attention across them.
        causal_mask = create_causal_mask(self.config, inputs_embeds, attention_mask, past_key_values, position_ids)
        if use_cache and past_key_values is None:
            past_key_values = DynamicCache(config=self.config)

        hidden_states = F.dropout(inputs_embeds, p=self.config.dropout, training=self.training)
        position_embeddings = self.rotary_emb(hidden_states, position_ids)
        all_hidden_states = () if output_hidden_states else None
        aux_loss = hidden_states.new_zeros((), dtype=torch.float32)
        for decoder_layer in self.layers:
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            hidden_states, layer_aux_loss = decoder_layer(
                hidden_states,
                attention_mask=causal_mask,
                position_embeddings=position_embeddings,
                past_key_values=past_key_values,
                position_ids=position_ids,
                **kwargs,
            )
            if layer_aux_loss is not None:
                aux_loss = aux_loss + layer_aux_loss
        hidden_states = self.norm(hidden_states)
        if output_hidden_states:
            all_hidden_states += (hidden_states,)
        return MiniMindModelOutputWithPast(
            last_hidden_state=hidden_states,
            past_key_values=past_key_values if use_cache else None,
            hidden_states=all_hidden_states,
            aux_loss=aux_loss if self.config.use_moe else None,
        )


class MiniMindForCausalLM(MiniMindPreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: MiniMindConfig):
        super().__init__(config)
        self.model = MiniMindModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()
        # A tied lm_head is saved once, as the embedding: declaring it lets Trainer's resume tie it back quietly, so
        # its "missing keys" warning is left for keys really missing from a checkpoint.
        self._keys_to_ignore_on_save = list(self.all_tied_weights_keys) or None

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        skip_logits: bool | None = None,
        **kwargs,
    ) -> MoeCausalLMOutputWithPast:
        """`loss` is the shifted token cross-entropy (`self.loss_function`, so Trainer's `num_items_in_batch` keeps it
        right under gradient accumulation and DDP) plus, for MoE in training, `aux_loss`: the load-balancing loss
        summed over layers and already weighted by `router_aux_loss_coef` (MiniMind's `loss + aux_loss`). When
        `num_items_in_batch` is given, `aux_loss` enters `loss` scaled by this micro-batch's share of the supervised
        tokens, so it counts once per optimizer step instead of once per accumulated micro-batch.

        `skip_logits` (Liger-Kernel's name; default: on when training with labels): project only the positions whose
        next token is supervised through the LM head, and return `logits=None`. The loss is the same; the prompt and
        padding positions' logits, which the loss never reads, are not computed. Pass `skip_logits=False` for the
        full logits in training."""
        outputs = self.model(
            input_ids, attention_mask, position_ids, past_key_values, inputs_embeds, use_cache, **kwargs
        )
        hidden_states = outputs.last_hidden_state
        if skip_logits is None:
            skip_logits = (
                self.training and labels is not None and isinstance(logits_to_keep, int) and not logits_to_keep
            )
        aux_loss = outputs.aux_loss
        loss = logits = None
        if skip_logits:
            if labels is None:
                raise ValueError("skip_logits=True computes only the loss, so it needs labels")
            loss_kwargs = {key: value for key, value in kwargs.items() if key != "shift_labels"}
            targets = kwargs.get("shift_labels")
            if targets is None:
                targets = F.pad(labels, (0, 1), value=-100)[..., 1:]
            supervised = targets != -100
            loss = self.loss_function(
                logits=self.lm_head(hidden_states[supervised]), labels=None, vocab_size=self.config.vocab_size,
                shift_labels=targets[supervised], **loss_kwargs,
            )  # fmt: skip
        else:
            slice_indices = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
            logits = self.lm_head(hidden_states[:, slice_indices, :])
            if labels is not None:
                loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        if loss is not None and aux_loss is not None:
            loss = loss + aux_loss.to(loss.device) * self._micro_batch_share(labels, **kwargs)
        return MoeCausalLMOutputWithPast(
            loss=loss, aux_loss=aux_loss, logits=logits, past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
        )  # fmt: skip

    @staticmethod
    def _micro_batch_share(labels, num_items_in_batch=None, shift_labels=None, **kwargs):
        if num_items_in_batch is None:
            return 1.0
        targets = shift_labels if shift_labels is not None else labels[..., 1:]
        return targets.ne(-100).sum() / num_items_in_batch


__all__ = ["MiniMindForCausalLM", "MiniMindModel", "MiniMindPreTrainedModel"]
