"""The training bench's variants: how each run trains (side, label, recipe overrides) and the default sets."""

from __future__ import annotations

# How each variant trains. "args" are recipe (parse_args) overrides on top of the YAML; None keeps the YAML's value.
SPEED_KEYS = ("bf16", "packing", "pad_to_multiple_of", "train_sampling_strategy", "optim", "torch_compile")
VARIANTS = {
    "native": {"side": "native", "label": "MiniMind native loop (fp32, pad to max_length)"},
    "native_step0": {
        "side": "native",
        "label": "MiniMind native loop, cosine from step 0 as Trainer's (its only change)",
        "args": {"first_lr_step": 0},
    },
    "native_ref": {
        "side": "native_ref",
        "label": "MiniMind's own code from `--native-ref` (train_full_sft.train_epoch, SFTDataset, model_minimind)",
    },
    "ours_fp32_fixed": {
        "side": "ours",
        "label": "ours, fp32, pad to max_length (native's padding)",
        "args": {"bf16": False, "packing": False, "pad_to_multiple_of": "MAX", "train_sampling_strategy": "random"},
    },
    "ours": {"side": "ours", "label": "ours, recommended CPU config (YAML as is)", "args": {}},
    "ours_bf16_fixed": {
        "side": "ours",
        "label": "ours, bf16, pad to max_length",
        "args": {"bf16": True, "packing": False, "pad_to_multiple_of": "MAX", "train_sampling_strategy": "random"},
    },
    "ours_bf16_dynamic": {
        "side": "ours",
        "label": "ours, bf16, pad to longest in batch",
        "args": {"bf16": True, "packing": False, "pad_to_multiple_of": None, "train_sampling_strategy": "random"},
    },
    "ours_bf16_grouped": {
        "side": "ours",
        "label": "ours, bf16, pad to longest + group_by_length",
        "args": {
            "bf16": True, "packing": False, "pad_to_multiple_of": None, "train_sampling_strategy": "group_by_length",
        },
    },
    "ours_bf16_packed": {
        "side": "ours",
        "label": "ours, bf16, padding-free packing (sdpa_packed: SDPA per sample)",
        "args": {"bf16": True, "packing": True, "pad_to_multiple_of": None, "train_sampling_strategy": "random"},
    },
    "ours_fp32_grouped": {
        "side": "ours",
        "label": "ours, fp32, pad to longest + group_by_length",
        "args": {
            "bf16": False, "packing": False, "pad_to_multiple_of": None, "train_sampling_strategy": "group_by_length",
        },
    },
    "ours_bf16_grouped_foreach": {
        "side": "ours",
        "label": "ours, bf16, grouped, optim adamw_torch (foreach, not fused)",
        "args": {
            "bf16": True, "packing": False, "pad_to_multiple_of": None, "train_sampling_strategy": "group_by_length",
            "optim": "adamw_torch",
        },
    },
    "ours_bf16_grouped_compile": {
        "side": "ours",
        "label": "ours, bf16, grouped, torch_compile",
        "args": {
            "bf16": True, "packing": False, "pad_to_multiple_of": None, "train_sampling_strategy": "group_by_length",
            "torch_compile": True,
        },
    },
    "ours_bf16_packed_blockmask": {
        "side": "ours",
        "label": "ours, bf16, packing + transformers' sdpa (one block-diagonal mask over the packed row)",
        "args": {
            "bf16": True, "packing": True, "pad_to_multiple_of": None, "train_sampling_strategy": "random",
            "attn_implementation": "sdpa",
        },
    },
    "trl": {"side": "trl", "label": "TRL SFTTrainer, same speed settings as `ours`"},
    # GPU: MiniMind trains under bf16 autocast there; "ours_fast" packs with flash-attention varlen when installed.
    "ours_bf16_fixed_gpu": {
        "side": "ours",
        "label": "ours, bf16, pad to max_length (native's padding)",
        "args": {"bf16": True, "packing": False, "pad_to_multiple_of": "MAX", "train_sampling_strategy": "random"},
    },
    "ours_fast_gpu": {"side": "ours", "label": "ours, bf16 + packing (flash-attn varlen if installed)", "args": "GPU"},
}  # fmt: skip
CPU_DEFAULT = "native,native_step0,ours_fp32_fixed,ours,trl"
CPU_SWEEP = (
    "ours_bf16_fixed,ours_bf16_dynamic,ours_bf16_grouped,ours_bf16_packed,ours_fp32_grouped,ours_bf16_grouped_foreach,"
    "ours_bf16_grouped_compile,ours_bf16_packed_blockmask"
)
GPU_DEFAULT = "native,native_step0,ours_bf16_fixed_gpu,ours_fast_gpu,trl"

# The identical-work comparison (same padding, fp32, same model): a few percent apart at most, so the run-to-run noise
# of a shared 2-core box (~10%) decides it unless each side gets its best of several runs.
PARITY_VARIANTS = ("native", "native_step0", "ours_fp32_fixed")
