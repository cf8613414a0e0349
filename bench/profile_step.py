"""Where a training step of the recommended CPU config spends its time: torch.profiler over a few Trainer steps.

    .venv/bin/python bench/profile_step.py                                  # minimind2-small, batch 16, max_length 340
    .venv/bin/python bench/profile_step.py --variant ours_fp32_fixed        # fp32, pad to max_length, for contrast

The run is the training bench's (`train_runs`): the recipe's Trainer built from the YAML, same data and weights. After
``--warmup`` steps, ``--steps`` steps run under torch.profiler. Every profiled op's self time (its time minus that of
the ops it called) goes to one row, by what the op is and where it ran: forward modules are marked with
`record_function` scopes (forward hooks), and backward ops inherit the scope of the forward op that made them
(autograd's sequence numbers). The data row is the whole DataLoader fetch (collation's Python included). "Python
between ops" is the step's wall time not inside any profiled op: Trainer,
accelerate, the model's Python and the hooks. The profiler itself slows small ops down, so the rows are shares of a
profiled step; the unprofiled step time is given beside them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_train  # noqa: E402

MATMUL = {"aten::mm", "aten::addmm", "aten::matmul", "aten::linear", "aten::_fused_linear"}
MATMUL_KINDS = ("matmul", "bmm")  # bmm: a batched matmul; in attention, eager attention's scores and output
SOFTMAX = ("aten::_softmax", "aten::_softmax_backward_data")
LOSS = ("log_softmax", "nll_loss", "cross_entropy")
INDEXING = ("index", "nonzero", "masked", "gather", "scatter", "embedding")

# (row, test on (op kind, scope)); first match wins. Scopes are the forward-hook marks set in `mark_scopes`.
ROWS = (
    ("optimizer (AdamW step, zero_grad)", lambda kind, scope: scope == "optimizer"),
    ("data (DataLoader, collation)", lambda kind, scope: scope == "data"),
    ("gradient clipping", lambda kind, scope: scope == "step" and kind != "python"),
    (
        "attention (SDPA kernel; eager per sample: bmm, softmax)",
        lambda kind, scope: kind == "sdpa" or (kind in ("bmm", "softmax") and scope == "attention"),
    ),
    ("matmul: q/k/v/o projections", lambda kind, scope: kind in MATMUL_KINDS and scope == "attention"),
    ("matmul: MLP (gate, up, down)", lambda kind, scope: kind in MATMUL_KINDS and scope in ("mlp", "moe")),
    ("matmul: LM head", lambda kind, scope: kind in MATMUL_KINDS and scope == "head"),
    ("loss (log_softmax, nll)", lambda kind, scope: kind == "loss"),
    ("elementwise: RMSNorm", lambda kind, scope: scope == "norm"),
    ("elementwise: SwiGLU, MoE routing", lambda kind, scope: scope in ("mlp", "moe")),
    ("elementwise: rope, reshapes in attention", lambda kind, scope: scope in ("attention", "rope")),
    ("LM head: supervised-position gather", lambda kind, scope: scope == "head"),
    ("embedding, residual adds, masks", lambda kind, scope: scope in ("model", "layer")),
    ("autograd engine (backward bookkeeping)", lambda kind, scope: kind == "engine"),
    ("Python between ops (Trainer, model code, hooks)", lambda kind, scope: kind == "python"),
    ("other", lambda kind, scope: True),
)


def mark_scopes(model):
    """Forward hooks that open a `record_function("## scope")` around each module of interest; returns the handles."""
    from torch.profiler import record_function

    from minimind_hf.modeling_minimind import (
        MiniMindAttention,
        MiniMindDecoderLayer,
        MiniMindMLP,
        MiniMindModel,
        MiniMindRMSNorm,
        MiniMindRotaryEmbedding,
        MiniMindSparseMoeBlock,
    )

    kinds = (
        (MiniMindRMSNorm, "norm"), (MiniMindSparseMoeBlock, "moe"), (MiniMindMLP, "mlp"),
        (MiniMindAttention, "attention"), (MiniMindRotaryEmbedding, "rope"), (MiniMindDecoderLayer, "layer"),
        (MiniMindModel, "model"),
    )  # fmt: skip
    handles, stack = [], []

    def opener(name):
        def pre(module, args):
            scope = record_function(f"## {name}")
            scope.__enter__()
            stack.append(scope)

        return pre

    def close(module, args, output):
        stack.pop().__exit__(None, None, None)

    for module in model.modules():
        name = next((n for cls, n in kinds if isinstance(module, cls)), None)
        if module is model:
            name = "head"  # the causal-LM wrapper: what runs outside the backbone is the LM head and the loss
        if name:
            handles += [module.register_forward_pre_hook(opener(name)), module.register_forward_hook(close)]
    return handles


def op_kind(name: str) -> str:
    if name.startswith("autograd::engine::evaluate_function"):
        return "engine"
    if "scaled_dot_product" in name or "flash_attention" in name:
        return "sdpa"
    base = name.split("autograd::engine::evaluate_function: ")[-1]
    if base == "aten::bmm" or base.startswith("BmmBackward"):
        return "bmm"
    if base in MATMUL or base.startswith(("MmBackward", "AddmmBackward")):
        return "matmul"
    if any(key in name for key in LOSS):
        return "loss"
    if base in SOFTMAX or base.startswith("SoftmaxBackward"):
        return "softmax"
    return "op"


def scope_of(event) -> str | None:
    """The innermost marked scope an event ran in (None: outside every mark, or no event)."""
    parent = event
    while parent is not None:
        name = parent.name
        if name.startswith("enumerate(DataLoader)") or name == "## collate":
            return "data"
        if name.startswith("## "):
            return name[3:]
        if name.startswith("Optimizer."):
            return "optimizer"
        parent = parent.cpu_parent
    return None


def split_events(events, wall_us: float) -> dict[str, float]:
    """Self time (µs) per row over the profiled steps; the wall time not inside any op is "Python between ops"."""
    scope_by_seq, rows = {}, defaultdict(float)
    forward = [e for e in events if not _in_backward(e)]
    for event in forward:
        scope = scope_of(event)
        if event.sequence_nr >= 0 and scope:
            scope_by_seq.setdefault(event.sequence_nr, scope)
    covered = 0.0
    for event in events:
        if event.name.startswith("enumerate(DataLoader)") and scope_of(event.cpu_parent) != "data":
            rows[_row("op", "data", "")] += event.cpu_time_total  # fetching + collating a batch, Python included
            covered += event.cpu_time_total
            continue
        if event.name.startswith(("ProfilerStep", "## ", "Optimizer.")) or scope_of(event) == "data":
            continue  # marks: their self time is Python between the ops they hold; data: counted whole above
        covered += event.self_cpu_time_total
        kind = op_kind(event.name)
        backward_node = _backward_node(event)
        if backward_node is not None:
            scope = scope_by_seq.get(backward_node.sequence_nr, "model")
            if event is backward_node:
                kind = "engine"
            elif kind == "op" and op_kind(backward_node.name) in ("matmul", "bmm", "softmax", "loss", "sdpa"):
                kind = op_kind(backward_node.name)
        else:
            scope = scope_of(event) or "step"
        rows[_row(kind, scope, event.name)] += event.self_cpu_time_total
    rows[_row("python", "step", "")] += max(wall_us - covered, 0.0)
    return dict(rows)


def _row(kind, scope, name) -> str:
    if kind == "op" and scope == "head" and any(key in name for key in LOSS):
        kind = "loss"
    return next(label for label, test in ROWS if test(kind, scope))


def _in_backward(event) -> bool:
    return _backward_node(event) is not None


def _backward_node(event):
    parent = event
    while parent is not None:
        if parent.name.startswith("autograd::engine::evaluate_function"):
            return parent
        parent = parent.cpu_parent
    return None


def profile(spec: dict, warmup: int, steps: int) -> dict:
    """One run of ``spec`` (a training-bench spec) with the profiler over ``steps`` steps after ``warmup``."""
    import torch
    import train_runs
    from torch.profiler import ProfilerActivity, record_function, schedule
    from transformers import TrainerCallback

    from minimind_hf.collator import build_collator
    from minimind_hf.recipe_utils import build_trainer

    _, training_args, tokenizer, model, train_dataset = train_runs.recipe_setup(spec)
    collator = build_collator(
        tokenizer, packing=training_args.packing, pad_to_multiple_of=training_args.pad_to_multiple_of
    )

    def collate(features):
        with record_function("## collate"):
            return collator(features)

    mark_scopes(model)
    trainer = build_trainer(model, training_args, tokenizer, collate, train_dataset, None)
    # warm-up steps unprofiled and timed, then the profiled ones (the schedule's "wait" covers the warm-up)
    prof = torch.profiler.profile(
        activities=[ProfilerActivity.CPU], schedule=schedule(wait=warmup, warmup=0, active=steps, repeat=1)
    )
    ends = []

    class Step(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())
            prof.start()

        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())
            prof.step()

    trainer.add_callback(Step())
    trainer.train()
    prof.stop()
    step_s = [b - a for a, b in zip(ends, ends[1:], strict=False)]
    unprofiled = step_s[1:warmup] or step_s[:warmup]
    profiled_s = sum(step_s[warmup : warmup + steps])
    rows = split_events(prof.events(), profiled_s * 1e6)
    top = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:12]
    return {
        "rows": {k: v / 1e3 / steps for k, v in rows.items()},  # ms per step
        "profiled_s_per_step": profiled_s / steps,
        "unprofiled_s_per_step": sum(unprofiled) / len(unprofiled),
        "top_ops": [(e.key, e.self_cpu_time_total / 1e3 / steps, e.count // steps) for e in top],
        "settings": train_runs.settings_of(training_args, model),
        "threads": torch.get_num_threads(),
    }


def format_profile(result: dict, spec: dict) -> str:
    total = sum(result["rows"].values())
    s = result["settings"]
    lines = [
        f"{spec['preset']}, batch {spec['batch_size']}, max_length {spec['max_length']}, variant `{spec['variant']}` "
        f"(bf16={s['bf16']}, padding={s['padding']}, sampler={s['sampler']}, optim={s['optim']}, attn={s['attn']}), "
        f"{result['threads']} threads: {result['profiled_s_per_step']:.2f} s/step under the profiler "
        f"({result['unprofiled_s_per_step']:.2f} s/step for the unprofiled warm-up steps, other batches).",
        "",
        "| where | ms / step | share |",
        "|---|---|---|",
    ]
    order = [label for label, _ in ROWS]
    for label in sorted(result["rows"], key=order.index):
        ms = result["rows"][label]
        if ms >= 0.05 * total / 100:
            lines.append(f"| {label} | {ms:,.0f} | {ms / total:.1%} |")
    lines += ["", "Top ops by self time (ms / step, calls / step): " + ", ".join(
        f"`{name}` {ms:,.0f} ({calls})" for name, ms, calls in result["top_ops"]
    ) + "."]  # fmt: skip
    return "\n".join(lines)


def run(
    preset="minimind2-small", variant="ours", batch_size=16, max_length=340, warmup=2, steps=3, data=None, seed=42
):
    """Prepare the bench's data and weights, profile one run in this process, return its markdown."""
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as workdir:
        spec = bench_train.single_run_spec(workdir, preset, variant, batch_size, max_length, warmup, steps, data, seed)
        return format_profile(profile(spec, warmup, steps), spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="minimind2-small")
    parser.add_argument("--variant", default="ours", help="an `ours*` variant of the training bench")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=340)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="profiled steps")
    parser.add_argument("--data", default=None, help="a MiniMind SFT jsonl instead of the synthetic conversations")
    args = parser.parse_args()
    print(run(args.preset, args.variant, args.batch_size, args.max_length, args.warmup, args.steps, args.data))


if __name__ == "__main__":
    main()
