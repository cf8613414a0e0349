"""The training bench's variants: how each run trains (side, label, recipe overrides) and the default sets."""

from __future__ import annotations


def _ours(label: str, bf16: bool, padding: str, sampler: str = "random", **extra) -> dict:
    """An ``ours_*`` variant: precision, padding ("max": to max_length, "longest": to the batch's longest, "packed":
    padding-free), sampler, and any further recipe overrides."""
    args = {"bf16": bf16, "packing": padding == "packed", "pad_to_multiple_of": "MAX" if padding == "max" else None,
            "train_sampling_strategy": sampler, **extra}  # fmt: skip
    return {"side": "ours", "label": label, "args": args}


# How each variant trains. "args" are recipe (parse_args) overrides on top of the YAML; None keeps the YAML's value.
GROUPED = "group_by_length"
VARIANTS = {
    "native": {"side": "native", "label": "MiniMind native loop (fp32, pad to max_length)"},
    "native_step0": {
        "side": "native",
        "label": "MiniMind native loop, cosine from step 0 as Trainer's (its only change)",
        "args": {"first_lr_step": 0},
    },
    "native_step0_order43": {
        "side": "native",
        "label": "`native_step0` on another batch order and augmentation draw (seed 43): how far batches alone move the losses",
        "args": {"first_lr_step": 0, "seed": 43},
    },
    "native_ref": {
        "side": "native_ref",
        "label": "MiniMind's own code from `--native-ref` (train_full_sft.train_epoch, SFTDataset, model_minimind)",
    },
    "ours_fp32_fixed": _ours("ours, fp32, pad to max_length (native's padding)", False, "max"),
    "ours": {"side": "ours", "label": "ours, recommended CPU config (YAML as is)", "args": {}},
    "ours_bf16_fixed": _ours("ours, bf16, pad to max_length", True, "max"),
    "ours_bf16_dynamic": _ours("ours, bf16, pad to longest in batch", True, "longest"),
    "ours_bf16_grouped": _ours("ours, bf16, pad to longest + group_by_length", True, "longest", GROUPED),
    "ours_bf16_packed": _ours("ours, bf16, padding-free packing (sdpa_packed: SDPA per sample)", True, "packed"),
    "ours_fp32_grouped": _ours("ours, fp32, pad to longest + group_by_length", False, "longest", GROUPED),
    "ours_bf16_grouped_foreach": _ours(
        "ours, bf16, grouped, optim adamw_torch (foreach, not fused)", True, "longest", GROUPED, optim="adamw_torch"
    ),
    "ours_bf16_grouped_compile": _ours(
        "ours, bf16, grouped, torch_compile", True, "longest", GROUPED, torch_compile=True
    ),
    "ours_compile": {
        "side": "ours",
        "label": "ours, recommended CPU config + torch_compile (README's advice for runs past compile's break-even)",
        "args": {"torch_compile": True},
    },
    "ours_bf16_packed_blockmask": _ours(
        "ours, bf16, packing + transformers' sdpa (one block-diagonal mask over the packed row)",
        True,
        "packed",
        attn_implementation="sdpa",
    ),
    "trl": {"side": "trl", "label": "TRL SFTTrainer, same speed settings as `ours`"},
    # GPU: MiniMind trains under bf16 autocast there; "ours_fast" packs with flash-attention varlen when installed.
    "ours_bf16_fixed_gpu": _ours("ours, bf16, pad to max_length (native's padding)", True, "max"),
    "ours_fast_gpu": {"side": "ours", "label": "ours, bf16 + packing (flash-attn varlen if installed)", "args": "GPU"},
}
CPU_DEFAULT = "native,native_step0,ours_fp32_fixed,ours,trl"
CPU_SWEEP = (
    "ours_bf16_fixed,ours_bf16_dynamic,ours_bf16_grouped,ours_bf16_packed,ours_fp32_grouped,ours_bf16_grouped_foreach,"
    "ours_bf16_grouped_compile,ours_bf16_packed_blockmask,ours_compile"
)
GPU_DEFAULT = "native,native_step0,ours_bf16_fixed_gpu,ours_fast_gpu,trl"

# The identical-work comparison (same padding, fp32, same model): a few percent apart at most, so the run-to-run noise
# of a shared 2-core box (~10%) decides it unless each side gets its best of several runs.
PARITY_VARIANTS = ("native", "native_step0", "ours_fp32_fixed")
