"""MiniMind's native checkpoints (`out/full_sft_768.pth`, `pretrain_512.pth`, `*_moe.pth`): read, check, infer, write.

A native checkpoint is a bare state dict (fp16 in every MiniMind release) with the module names of
`MiniMindForCausalLM` and both tied keys present (`model.embed_tokens.weight` and `lm_head.weight`). It carries no
config, so the architecture is inferred from key names and tensor shapes. Only a few fields cannot be: the number of
attention heads when there is no qk-norm (whose weight gives head_dim), and numerics such as `rms_norm_eps` or the
router's top-k. Those come from the source config, an explicit override, or the preset of the matching MiniMind era.
"""

import pickle
import re
from collections import defaultdict

import torch

from .configuration_minimind import MINIMIND_PRESETS, MiniMindConfig
from .errors import CheckpointError
from .modeling_minimind import MiniMindForCausalLM

EMBED, LM_HEAD = "model.embed_tokens.weight", "lm_head.weight"
# Pre-2025-04-26 MiniMind ("v1") names: a different module tree and an interleaved (complex-number) RoPE.
V1_MARKERS = ("tok_embeddings.", ".attention.wq.", ".feed_forward.w1.", "output.weight")
# Rotary tables some checkpoints carry; they are recomputed from the config, never loaded.
DERIVED_BUFFERS = ("freqs_cos", "freqs_sin", "rotary_emb.inv_freq")
# Wrappers that prefix every name: DDP (`module.`) and torch.compile (`_orig_mod.`).
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Config fields that shapes never determine; a source config.json may carry them (see `carried_fields`).
CARRIED_FIELDS = (
    "num_attention_heads", "hidden_act", "max_position_embeddings", "initializer_range", "rms_norm_eps", "dropout",
    "rope_parameters", "inference_rope_scaling", "num_experts_per_tok", "norm_topk_prob", "router_aux_loss_coef",
    "aux_loss_type", "bos_token_id", "eos_token_id", "pad_token_id",
)  # fmt: skip


def torch_load(path):
    """`torch.load(weights_only=True)`, its refusals and read failures as a `CheckpointError` naming the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only never runs the pickled code an arbitrary object needs
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        raise CheckpointError(
            f"{path} is not a plain state dict: torch.load(weights_only=True) refused it"
            + (f" (it pickles a {found.group(1)})" if found else "")
            + ". Re-save only the tensors, e.g. torch.save(model.state_dict(), path), where you trust the file."
        ) from None
    except (RuntimeError, EOFError, KeyError) as err:
        raise CheckpointError(
            f"{path} cannot be read by torch.load: empty, truncated or not saved by torch.save"
        ) from err


def load_native(path) -> dict[str, torch.Tensor]:
    """State dict of a native `.pth` (also MiniMind's `*_resume.pth`, whose weights sit under "model")."""
    obj = torch_load(path)
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return clean_state_dict(obj, path)


def clean_state_dict(state: dict, source) -> dict[str, torch.Tensor]:
    """Strip DDP/compile prefixes and derived rotary buffers; refuse MiniMind v1 and MiniMind's own LoRA files."""
    cleaned = {}
    for key, value in state.items():
        while key.startswith(WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        if not key.endswith(DERIVED_BUFFERS):
            cleaned[key] = value
    if any(marker in key for key in cleaned for marker in V1_MARKERS):
        raise CheckpointError(
            f"{source} is a MiniMind v1 checkpoint (before 2025-04-26: `tok_embeddings`, `layers.N.attention.wq`, "
            "`feed_forward.w1`, `output.weight`). v1 also used a different, interleaved RoPE, so renaming its weights "
            "would not give the same model. Use it with MiniMind's v1 code, or start from a MiniMind2 / minimind-3 "
            "checkpoint."
        )
    if EMBED not in cleaned and any(".lora" in key for key in cleaned):
        raise CheckpointError(
            f"{source} holds only MiniMind-native LoRA weights, not a model. Merge it into its base with MiniMind's "
            "scripts first, or train the adapter here (peft) and pass the adapter folder."
        )
    return cleaned


def infer_architecture(state: dict[str, torch.Tensor]) -> dict:
    """Config fields fixed by key names and tensor shapes. Heads and head_dim only with qk-norm (see module doc)."""

    def shape(key):
        if key not in state:
            raise CheckpointError(f"no `{key}`: not a MiniMind-layout checkpoint")
        return tuple(state[key].shape)

    vocab_size, hidden_size = shape(EMBED)
    layer_ids = {int(m.group(1)) for key in state if (m := re.match(r"model\.layers\.(\d+)\.", key))}
    if not layer_ids:
        raise CheckpointError("no `model.layers.N.*` weights: not a MiniMind-layout checkpoint")
    attn, mlp = "model.layers.0.self_attn.", "model.layers.0.mlp."
    fields = {"vocab_size": vocab_size, "hidden_size": hidden_size, "num_hidden_layers": max(layer_ids) + 1}
    fields["qk_norm"] = attn + "q_norm.weight" in state
    if fields["qk_norm"]:
        head_dim = shape(attn + "q_norm.weight")[0]
        fields.update(head_dim=head_dim, num_attention_heads=shape(attn + "q_proj.weight")[0] // head_dim)
        fields["num_key_value_heads"] = shape(attn + "k_proj.weight")[0] // head_dim
    fields["use_moe"] = mlp + "gate.weight" in state
    if fields["use_moe"]:
        size = shape(mlp + "experts.0.gate_proj.weight")[0]
        shared = {m.group(1) for key in state if (m := re.match(re.escape(mlp) + r"shared_experts\.(\d+)\.", key))}
        fields.update(num_experts=shape(mlp + "gate.weight")[0], n_shared_experts=len(shared))
        fields.update(intermediate_size=size, moe_intermediate_size=size)
    else:
        fields["intermediate_size"] = shape(mlp + "gate_proj.weight")[0]
    embed, lm_head = state[EMBED], state.get(LM_HEAD)
    fields["tie_word_embeddings"] = (
        lm_head is None
        or lm_head is embed
        or (embed.device.type != "meta" and lm_head.shape == embed.shape and torch.equal(lm_head, embed))
    )
    return fields


def era_preset(arch: dict) -> str:
    """The released MiniMind whose non-shape fields (eps, router top-k, aux loss) a checkpoint most likely shares."""
    if arch["qk_norm"]:
        return "minimind-3-moe" if arch["use_moe"] else "minimind-3"
    return "minimind2-moe" if arch["use_moe"] else "minimind2"


def config_from_state(state, defaults: dict | None = None, preset: str | None = None, **overrides) -> MiniMindConfig:
    """MiniMindConfig for `state`: shapes first, then `overrides`, then `defaults` (a source config), then the preset
    (given, or guessed from the structure). Raises `CheckpointError` when the pieces contradict each other."""
    arch = infer_architecture(state)
    preset = preset or era_preset(arch)
    if preset not in MINIMIND_PRESETS:
        raise CheckpointError(f"unknown preset {preset!r}; choose one of {sorted(MINIMIND_PRESETS)}")
    fields = {key: value for key, value in MINIMIND_PRESETS[preset].items() if key in CARRIED_FIELDS}
    given = {k: v for k, v in (defaults or {}).items() if k in CARRIED_FIELDS and v is not None} | overrides
    for key, value in given.items():
        if key in arch and arch[key] != value:
            raise CheckpointError(f"{key}={value!r} contradicts the checkpoint's tensors, which give {arch[key]!r}")
    fields.update(given)
    if not arch["qk_norm"]:  # heads are not in the shapes: given, else the preset's, else MiniMind's 8
        heads = fields.get("num_attention_heads", 8)
        q_out = state["model.layers.0.self_attn.q_proj.weight"].shape[0]
        k_out = state["model.layers.0.self_attn.k_proj.weight"].shape[0]
        if q_out % heads or k_out % (q_out // heads):
            raise CheckpointError(f"q_proj has {q_out} and k_proj {k_out} outputs: not divisible into {heads} heads")
        arch.update(num_attention_heads=heads, head_dim=q_out // heads, num_key_value_heads=k_out // (q_out // heads))
    try:
        return MiniMindConfig(**{**fields, **arch})
    except ValueError as err:
        raise CheckpointError(f"inconsistent architecture: {err}") from err


def check_state(state: dict[str, torch.Tensor], config: MiniMindConfig, source) -> None:
    """Strict key and shape check against `MiniMindForCausalLM(config)`, reported by name instead of a torch error."""
    with torch.device("meta"):
        expected = {key: tuple(t.shape) for key, t in MiniMindForCausalLM(config).state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k}: {tuple(state[k].shape)}, expected {expected[k]}" for k in expected if k in state and tuple(
        state[k].shape) != expected[k]]  # fmt: skip
    broken = next(
        (k for k, t in state.items() if t.is_floating_point() and not t.is_meta and not torch.isfinite(t).all()), None
    )
    if broken:
        raise CheckpointError(
            f"{source}: tensor {broken} holds NaN/inf values: the file is corrupt, or saved from a run that diverged"
        )
    if missing or unexpected or wrong:
        parts = [f"{source} does not match the inferred MiniMind architecture ({summary(config)}):"]
        for title, keys in (("missing", missing), ("unexpected", unexpected)):
            if keys:
                parts.append(f"  {len(keys)} {title} key(s):\n" + "\n".join("    " + k for k in _fold_layers(keys)))
        if wrong:
            parts.append(f"  {len(wrong)} wrong shape(s):\n" + "\n".join("    " + w for w in wrong[:20]))
        parts.append("Override what was guessed with --preset, --num-attention-heads or --set KEY=VALUE.")
        raise CheckpointError("\n".join(parts))


def _fold_layers(keys: list[str], limit: int = 20) -> list[str]:
    """`model.layers.{0,1,7}.x` instead of one line per layer."""
    groups = defaultdict(list)
    for key in keys:
        m = re.match(r"(.*\.layers\.)(\d+)(\..*)", key)
        groups[(m.group(1), m.group(3)) if m else (key, None)].append(int(m.group(2)) if m else None)
    lines = [
        f"{head}{{{','.join(map(str, sorted(ids)))}}}{tail}" if tail else head for (head, tail), ids in groups.items()
    ]
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


def summary(config: MiniMindConfig) -> str:
    moe = ""
    if config.use_moe:
        moe = f", MoE {config.num_experts} experts top-{config.num_experts_per_tok} + {config.n_shared_experts} shared"
    return (
        f"hidden {config.hidden_size}, {config.num_hidden_layers} layers, heads {config.num_attention_heads}/"
        f"{config.num_key_value_heads} (head_dim {config.head_dim}), intermediate {config.intermediate_size}, "
        f"qk_norm {config.qk_norm}, rms_norm_eps {config.rms_norm_eps}{moe}"
    )


def save_native(state: dict[str, torch.Tensor], path, dtype: torch.dtype = torch.float16) -> None:
    """MiniMind's layout: one state dict, both tied keys present, so MiniMind's `load_state_dict(strict=True)` works."""
    out = cast_state(state, dtype)
    out.setdefault(LM_HEAD, out[EMBED])
    torch.save(out, path)


def cast_state(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors in `dtype`; tensors shared between keys (tied embeddings) stay shared."""
    done: dict[int, torch.Tensor] = {}
    for tensor in state.values():
        if id(tensor) not in done:
            done[id(tensor)] = tensor.detach().to("cpu", dtype).contiguous()
    return {key: done[id(tensor)] for key, tensor in state.items()}
