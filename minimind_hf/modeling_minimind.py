"""MiniMind decoder (dense and MoE) on transformers 5 primitives, with MiniMind's weight names.

Only torch, transformers and the sibling configuration file are imported, so `register_for_auto_class` can ship this
file next to a checkpoint for `trust_remote_code=True` loading.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import MoeCausalLMOutputWithPast, MoeModelOutputWithPast
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS, dynamic_rope_update
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import can_return_tuple
from transformers.utils.output_capturing import OutputRecorder, capture_outputs, maybe_install_capturing_hooks

from .configuration_minimind import MiniMindConfig


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

    Returns the output and the router logits `(batch·seq, num_experts)`, from which the causal-LM head computes the
    load-balancing loss (`load_balancing_loss_func`), as transformers' MoE models do.

    Dispatch: the token-expert pairs are sorted by expert once and each expert runs on its contiguous slice, so a
    layer costs one host sync (the slice sizes) instead of one per expert, and every expert stays in the autograd graph
    even when it gets no token (DDP without `find_unused_parameters` needs its zero gradient). Slices of
    data-dependent size cannot be traced, so under `torch.compile` / `torch.export` every expert runs on every token
    and the routing weights (zero for the experts a token did not pick) combine them: static shapes, same result.
    """

    def __init__(self, config: MiniMindConfig):
        super().__init__()
        self.num_experts, self.top_k = config.num_experts, config.num_experts_per_tok
        self.norm_topk_prob = config.norm_topk_prob
        self.gate = nn.Linear(config.hidden_size, config.num_experts, bias=False)
        size = config.moe_intermediate_size
        self.experts = nn.ModuleList(MiniMindMLP(config, size) for _ in range(config.num_experts))
        if config.n_shared_experts > 0:  # MiniMind2-MoE: experts every token goes through
            self.shared_experts = nn.ModuleList(MiniMindMLP(config, size) for _ in range(config.n_shared_experts))

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch_size, seq_len, hidden_size = hidden_states.shape
        x = hidden_states.reshape(-1, hidden_size)
        router_logits = self.gate(x)
        routing_weights = F.softmax(router_logits, dim=-1, dtype=torch.float32)
        topk_weight, topk_idx = torch.topk(routing_weights, self.top_k, dim=-1)
        if self.norm_topk_prob:
            topk_weight = topk_weight / (topk_weight.sum(dim=-1, keepdim=True) + 1e-20)
        if torch.compiler.is_compiling():
            out = self._dispatch_static(x, topk_idx, topk_weight)
        else:
            out = self._dispatch_sorted(x, topk_idx, topk_weight)
        for expert in getattr(self, "shared_experts", []):
            out = out + expert(x)
        return out.view(batch_size, seq_len, hidden_size), router_logits

    def _dispatch_sorted(self, x, topk_idx, topk_weight):
        flat_idx = topk_idx.reshape(-1)
        order = flat_idx.argsort(stable=True)
        token_idx = order // self.top_k
        sizes = torch.bincount(flat_idx, minlength=self.num_experts).tolist()
        chunks = x[token_idx].split(sizes)
        y = torch.cat([expert(chunk) for expert, chunk in zip(self.experts, chunks, strict=True)])
        y = (y * topk_weight.reshape(-1)[order, None]).to(x.dtype)
        return torch.zeros_like(x).index_add_(0, token_idx, y)

    def _dispatch_static(self, x, topk_idx, topk_weight):
        weights = x.new_zeros(x.shape[0], self.num_experts).scatter_add(1, topk_idx, topk_weight.to(x.dtype))
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            out = out + expert(x) * weights[:, e, None]
        return out


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
        """Returns the hidden states and the MoE router logits (None when dense). The router logits leave through the
        layer's output, not a hook inside it: under reentrant gradient checkpointing only the layer's outputs keep
        their autograd graph, and the load-balancing loss needs it."""
        residual = hidden_states
        hidden_states, _ = self.self_attn(
            self.input_layernorm(hidden_states), position_embeddings, attention_mask, past_key_values, **kwargs
        )
        hidden_states = residual + hidden_states
        mlp_output = self.mlp(self.post_attention_layernorm(hidden_states))
        router_logits = None
        if isinstance(mlp_output, tuple):
            mlp_output, router_logits = mlp_output
        return hidden_states + mlp_output, router_logits


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
    _can_compile_fullgraph = True
    # Filled by forward hooks when `output_hidden_states` / `output_attentions` / `output_router_logits` is set in the
    # call or the config (transformers' `capture_outputs`, as in qwen3_moe).
    _can_record_outputs = {
        "hidden_states": OutputRecorder(MiniMindDecoderLayer, index=0),
        "attentions": OutputRecorder(MiniMindAttention, index=1),
        "router_logits": OutputRecorder(MiniMindDecoderLayer, index=1),
    }

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Lists `AutoModel` in the saved `auto_map` too (vLLM's Transformers backend and feature extraction load the
        backbone through it), whichever of the two classes is saved."""
        if type(self)._auto_class is not None:
            auto_map = getattr(self.config, "auto_map", None) or {}
            self.config.auto_map = {**auto_map, "AutoModel": "modeling_minimind.MiniMindModel"}
        return super().save_pretrained(save_directory, *args, **kwargs)


class MiniMindModel(MiniMindPreTrainedModel):
    def __init__(self, config: MiniMindConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([MiniMindDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = MiniMindRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = MiniMindRotaryEmbedding(config)
        self.gradient_checkpointing = False
        self.post_init()
        # Up front rather than on the first request: lazy installation takes a lock that torch.compile cannot trace,
        # and MoE training requests router logits on every step. The hooks are idle unless outputs are requested.
        maybe_install_capturing_hooks(self)

    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> MoeModelOutputWithPast:
        """`hidden_states`, `attentions` (eager attention only) and, for MoE, `router_logits` are recorded when asked
        for with `output_hidden_states` / `output_attentions` / `output_router_logits` (call or config);
        `return_dict=False` (call or config) returns a tuple."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Specify exactly one of input_ids or inputs_embeds")
        if use_cache is None:  # unlike transformers' config default, no cache is built in training
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
        for decoder_layer in self.layers:
            hidden_states, _ = decoder_layer(
                hidden_states,
                attention_mask=causal_mask,
                position_embeddings=position_embeddings,
                past_key_values=past_key_values,
                position_ids=position_ids,
                **kwargs,
            )
        return MoeModelOutputWithPast(
            last_hidden_state=self.norm(hidden_states), past_key_values=past_key_values if use_cache else None
        )


def load_balancing_loss_func(
    router_logits: tuple[torch.Tensor, ...],
    num_experts: int,
    top_k: int,
    aux_loss_type: str,
    attention_mask: torch.Tensor,
) -> torch.Tensor:
    """MiniMind's router load-balancing loss, summed over the MoE layers (not yet weighted by `router_aux_loss_coef`).

    `router_logits`: one `(batch·seq, num_experts)` tensor per layer; `attention_mask`: `(batch, ≥seq)`, 1 for the
    tokens that count (all ones reproduces MiniMind's loop, which sends no mask, so padding counts there). With load_e
    the fraction of tokens that picked expert e (summed over the k slots) and P_e their mean router probability,
    `"batch"` is minimind-3's `E · Σ_e load_e · P_e` over all tokens of the batch; `"sequence"` is MiniMind2's
    DeepSeek-style loss: the same product per sequence with load normalised by `seq_len · k / E`, averaged over the
    sequences.
    """
    batch_size = attention_mask.shape[0]
    total = router_logits[0].new_zeros((), dtype=torch.float32)
    for layer_logits in router_logits:
        probs = F.softmax(layer_logits, dim=-1, dtype=torch.float32).view(batch_size, -1, num_experts)
        picked = F.one_hot(torch.topk(probs, top_k, dim=-1).indices, num_experts).sum(-2).float()
        mask = attention_mask[:, -probs.shape[1] :, None].to(probs.dtype)
        if aux_loss_type == "sequence":
            tokens = mask.sum(1)  # (batch, 1)
            load = (picked * mask).sum(1) * num_experts / (tokens * top_k).clamp(min=1)
            per_sequence = (load * (probs * mask).sum(1) / tokens.clamp(min=1)).sum(-1)
            has_tokens = tokens[:, 0] > 0
            total = total + (per_sequence * has_tokens).sum() / has_tokens.sum().clamp(min=1)
        else:
            tokens = mask.sum().clamp(min=1)
            load = (picked * mask).sum((0, 1)) / tokens
            total = total + (load * (probs * mask).sum((0, 1)) / tokens).sum() * num_experts
    return total


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

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_router_logits: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        skip_logits: bool | None = None,
        **kwargs,
    ) -> MoeCausalLMOutputWithPast:
        """`loss` is the shifted token cross-entropy (`self.loss_function`, so Trainer's `num_items_in_batch` keeps it
        right under gradient accumulation and DDP), plus `router_aux_loss_coef · aux_loss` for MoE.

        MoE: `aux_loss` is MiniMind's load-balancing loss (`load_balancing_loss_func`) from the returned
        `router_logits`. They are computed when `output_router_logits` is set (call or config, transformers'
        convention; TRL sets it) and always in training with labels, as MiniMind balances its router in every training
        step (`router_aux_loss_coef=0` turns that off). So our training loss is MiniMind's `loss + aux_loss`. When
        `num_items_in_batch` is given, the aux term enters `loss` scaled by this micro-batch's share of the supervised
        tokens, so it counts once per optimizer step instead of once per accumulated micro-batch.

        `skip_logits` (Liger-Kernel's name; default: on when training with labels): project only the positions whose
        next token is supervised through the LM head, and return `logits=None`. The loss is the same; the prompt and
        padding positions' logits, which the loss never reads, are not computed. Pass `skip_logits=False` for the
        full logits in training."""
        config = self.config
        if output_router_logits is None:
            output_router_logits = getattr(config, "output_router_logits", False)
        output_router_logits = config.use_moe and (
            output_router_logits or (self.training and labels is not None and config.router_aux_loss_coef != 0)
        )
        # return_dict=True: the backbone would otherwise follow `config.return_dict=False` (qwen3 breaks on that).
        outputs = self.model(
            input_ids, attention_mask, position_ids, past_key_values, inputs_embeds, use_cache,
            output_router_logits=output_router_logits, return_dict=True, **kwargs,
        )  # fmt: skip
        hidden_states = outputs.last_hidden_state
        if skip_logits is None:
            skip_logits = (
                self.training and labels is not None and isinstance(logits_to_keep, int) and not logits_to_keep
            )
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
                logits=self.lm_head(hidden_states[supervised]), labels=None, vocab_size=config.vocab_size,
                shift_labels=targets[supervised], **loss_kwargs,
            )  # fmt: skip
        else:
            slice_indices = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
            logits = self.lm_head(hidden_states[:, slice_indices, :])
            if labels is not None:
                loss = self.loss_function(logits=logits, labels=labels, vocab_size=config.vocab_size, **kwargs)
        aux_loss = None
        if output_router_logits:
            if attention_mask is None or attention_mask.dim() != 2:  # no padding mask (or a custom 4D one)
                attention_mask = hidden_states.new_ones(hidden_states.shape[:2], dtype=torch.long)
            aux_loss = load_balancing_loss_func(
                outputs.router_logits, config.num_experts, config.num_experts_per_tok, config.aux_loss_type,
                attention_mask,
            )  # fmt: skip
            if loss is not None:
                share = self._micro_batch_share(labels, **kwargs)
                loss = loss + config.router_aux_loss_coef * aux_loss.to(loss.device) * share
        return MoeCausalLMOutputWithPast(
            loss=loss, aux_loss=aux_loss, logits=logits, past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states, attentions=outputs.attentions, router_logits=outputs.router_logits,
        )  # fmt: skip

    @staticmethod
    def _micro_batch_share(labels, num_items_in_batch=None, shift_labels=None, **kwargs):
        if num_items_in_batch is None:
            return 1.0
        targets = shift_labels if shift_labels is not None else labels[..., 1:]
        return targets.ne(-100).sum() / num_items_in_batch


__all__ = ["MiniMindForCausalLM", "MiniMindModel", "MiniMindPreTrainedModel"]
