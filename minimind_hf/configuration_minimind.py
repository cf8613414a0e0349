"""MiniMind configuration: MiniMind's field names and defaults (minimind-3), as a transformers 5 dataclass config."""

import math
from typing import Literal

import transformers

# This file is also the remote code of saved folders: on transformers 4 (no PreTrainedConfig, different rope and
# cache APIs) fail with the way out instead of an import error deep inside.
if int(transformers.__version__.split(".")[0]) < 5:
    raise ImportError(
        f"MiniMind's custom code needs transformers>=5 (this is {transformers.__version__}). Upgrade transformers, or "
        "export a folder transformers 4 loads without custom code: minimind-hf convert MODEL OUT --to qwen3 "
        "(minimind-3) or --to llama (MiniMind2)."
    )

from transformers import PreTrainedConfig  # noqa: E402
from transformers.modeling_rope_utils import RopeParameters

# MiniMind's `inference_rope_scaling=True` switch, expressed as transformers' YaRN parameters. attention_factor is
# pinned to 1.0 because MiniMind does not rescale cos/sin (transformers would default to 0.1·ln(16)+1).
MINIMIND_YARN_ROPE_PARAMETERS = {
    "rope_type": "yarn",
    "factor": 16.0,
    "original_max_position_embeddings": 2048,
    "beta_fast": 32.0,
    "beta_slow": 1.0,
    "attention_factor": 1.0,
}

_MINIMIND2 = {"rms_norm_eps": 1e-5, "qk_norm": False, "num_key_value_heads": 2}
_MINIMIND3 = {"rms_norm_eps": 1e-6, "qk_norm": True, "num_key_value_heads": 4}

# Released MiniMind sizes (parameter counts count the tied embedding once), plus one CPU-sized demo model.
MINIMIND_PRESETS: dict[str, dict] = {
    # MiniMind2 (2025): 25.8M
    "minimind2-small": {**_MINIMIND2, "hidden_size": 512, "num_hidden_layers": 8, "intermediate_size": 1408},
    # MiniMind2 (2025): 104M
    "minimind2": {**_MINIMIND2, "hidden_size": 768, "num_hidden_layers": 16, "intermediate_size": 2048},
    # MiniMind2-MoE (2025): 145M; DeepSeek-style: 4 routed experts top-2, 1 shared, sequence-level aux loss 0.01
    "minimind2-moe": {
        **_MINIMIND2,
        "hidden_size": 640,
        "num_hidden_layers": 8,
        "intermediate_size": 1728,
        "use_moe": True,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "n_shared_experts": 1,
        "moe_intermediate_size": 1728,
        "router_aux_loss_coef": 0.01,
        "aux_loss_type": "sequence",
    },
    # minimind-3 (2026): 63.9M
    "minimind-3": {**_MINIMIND3, "hidden_size": 768, "num_hidden_layers": 8, "intermediate_size": 2432},
    # minimind-3-MoE (2026): 198M total, 64M active; 4 experts top-1, batch-level aux loss 5e-4
    "minimind-3-moe": {
        **_MINIMIND3,
        "hidden_size": 768,
        "num_hidden_layers": 8,
        "intermediate_size": 2432,
        "use_moe": True,
        "num_experts": 4,
        "num_experts_per_tok": 1,
        "moe_intermediate_size": 2432,
        "router_aux_loss_coef": 5e-4,
        "aux_loss_type": "batch",
    },
    # NOT a released size: a ~2M-parameter minimind-3-shaped model for CPU demos and tests.
    "minimind-tiny": {
        **_MINIMIND3,
        "hidden_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 384,
    },
}


class MiniMindConfig(PreTrainedConfig):
    r"""
    Configuration of a MiniMind decoder (dense or MoE). Defaults reproduce minimind-3 (63.9M).

    Beyond the usual Llama/Qwen3 fields:
        qk_norm (`bool`): RMSNorm over head_dim on queries and keys before RoPE (minimind-3: True, MiniMind2: False).
        dropout (`float`): MiniMind's single dropout rate (embeddings, attention probabilities, attention output).
        inference_rope_scaling (`bool`): MiniMind's switch for YaRN (factor 16 over 2048 positions); it fills
            `rope_parameters` with `MINIMIND_YARN_ROPE_PARAMETERS` unless YaRN parameters are already given.
        use_moe, num_experts, num_experts_per_tok, moe_intermediate_size, n_shared_experts, norm_topk_prob:
            the MoE feed-forward (softmax router, top-k, optional renormalisation, shared experts always added).
        router_aux_loss_coef (`float`): load-balancing loss weight; `coef·aux` is added to the loss in training.
        aux_loss_type (`"batch"` | `"sequence"`): minimind-3's loss over all tokens of the batch, or MiniMind2's
            DeepSeek-style loss averaged over sequences.
        output_router_logits (`bool`, MoE configs only): return `router_logits` and `aux_loss` from every forward,
            as transformers' MoE configs do (TRL keys its MoE support off this attribute). Training with labels
            computes them either way. Dense configs do not carry the attribute, so peers don't take them for MoE.

    Use `MiniMindConfig.from_preset(name, **overrides)` for the released sizes (see `MINIMIND_PRESETS`).
    """

    model_type = "minimind"
    keys_to_ignore_at_inference = ["past_key_values"]
    default_theta = 1_000_000.0

    vocab_size: int = 6400
    hidden_size: int = 768
    intermediate_size: int | None = None
    num_hidden_layers: int = 8
    num_attention_heads: int = 8
    num_key_value_heads: int | None = 4
    head_dim: int | None = None
    hidden_act: str = "silu"
    max_position_embeddings: int = 32768
    initializer_range: float = 0.02
    rms_norm_eps: float = 1e-6
    qk_norm: bool = True
    dropout: float | int = 0.0
    use_cache: bool = True
    tie_word_embeddings: bool = True
    rope_parameters: RopeParameters | dict | None = None
    inference_rope_scaling: bool = False
    use_moe: bool = False
    num_experts: int = 4
    num_experts_per_tok: int = 1
    moe_intermediate_size: int | None = None
    n_shared_experts: int = 0
    norm_topk_prob: bool = True
    router_aux_loss_coef: float = 5e-4
    aux_loss_type: Literal["batch", "sequence"] = "batch"
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2

    def __post_init__(self, **kwargs):
        if self.intermediate_size is None:
            self.intermediate_size = math.ceil(self.hidden_size * math.pi / 64) * 64
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.moe_intermediate_size is None:
            self.moe_intermediate_size = self.intermediate_size
        if self.aux_loss_type not in ("batch", "sequence"):
            raise ValueError(f"aux_loss_type must be 'batch' or 'sequence', got {self.aux_loss_type!r}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if self.use_moe:
            kwargs.setdefault("output_router_logits", False)
        else:
            kwargs.pop("output_router_logits", None)
        rope = self.rope_parameters or kwargs.get("rope_scaling") or {}
        if self.inference_rope_scaling and rope.get("rope_type", rope.get("type")) != "yarn":
            theta = rope.get("rope_theta", kwargs.get("rope_theta", self.default_theta))
            self.rope_parameters = {**MINIMIND_YARN_ROPE_PARAMETERS, "rope_theta": theta}
            kwargs.pop("rope_scaling", None)
        super().__post_init__(**kwargs)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "MiniMindConfig":
        """Config of a released MiniMind size (`MINIMIND_PRESETS`), with keyword overrides."""
        if name not in MINIMIND_PRESETS:
            raise ValueError(f"Unknown MiniMind preset {name!r}; choose one of {sorted(MINIMIND_PRESETS)}")
        return cls(**{**MINIMIND_PRESETS[name], **overrides})


__all__ = ["MINIMIND_PRESETS", "MINIMIND_YARN_ROPE_PARAMETERS", "MiniMindConfig"]
