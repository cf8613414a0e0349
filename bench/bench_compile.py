"""Does `torch_compile` pay here? Its compile time against its steady-state gain, on the recommended CPU config.

    .venv/bin/python bench/bench_compile.py                          # minimind2-small, batch 16, max_length 340
    .venv/bin/python bench/bench_compile.py --preset minimind-3 --rounds 8

The model, data and collator are the training bench's recommended config (`ours`: the recipe's YAML as is, so
packed batches whose length changes every step). Two copies of the same initial weights train on the same batches,
one eager and one under `torch.compile` with the YAML's backend and mode, as Trainer's ``torch_compile`` wraps the
model. A step is forward, backward, clipping and the optimizer Trainer would build (`get_optimizer_cls_and_kwargs`).
The first ``--compile-steps`` steps of each copy are the compile phase (dynamo compiles once for the first shape and
once more, with dynamic shapes, when the length changes); its cost is the compiled copy's time there minus the eager
copy's. Then each round runs one step of each copy on the round's batch, in alternating order, so the host's drift
hits both alike; the gain is the median over the rounds of eager time / compiled time, and compile pays after
cost ÷ (eager − compiled median s/step) steps.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_train  # noqa: E402


def measure(spec: dict, compile_steps: int, rounds: int) -> dict:
    import torch
    import train_runs
    from transformers import Trainer

    from minimind_hf.collator import build_collator
    from minimind_hf.recipe_utils import build_trainer

    _, args, tokenizer, eager, train_dataset = train_runs.recipe_setup(spec)
    collator = build_collator(tokenizer, packing=args.packing, pad_to_multiple_of=args.pad_to_multiple_of)
    loader = build_trainer(eager, args, tokenizer, collator, train_dataset, None).get_train_dataloader()
    batches = list(islice(loader, compile_steps + rounds))
    twin = copy.deepcopy(eager)
    compiled = torch.compile(twin, backend=args.torch_compile_backend or "inductor", mode=args.torch_compile_mode)
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, eager)
    optimizers = {id(eager): optimizer_cls(eager.parameters(), **optimizer_kwargs),
                  id(compiled): optimizer_cls(twin.parameters(), **optimizer_kwargs)}  # fmt: skip

    def step(model, batch) -> tuple[float, float]:
        start = time.perf_counter()
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizers[id(model)].step()
        optimizers[id(model)].zero_grad(set_to_none=True)
        return time.perf_counter() - start, loss.item()

    (first_eager, loss_eager), (first_compiled, loss_compiled) = step(eager, batches[0]), step(compiled, batches[0])
    warm_eager, warm_compiled = [first_eager], [first_compiled]
    for batch in batches[1:compile_steps]:
        warm_eager.append(step(eager, batch)[0])
        warm_compiled.append(step(compiled, batch)[0])
    eager_s, compiled_s, tokens = [], [], 0
    for i, batch in enumerate(batches[compile_steps:]):
        mask = batch.get("attention_mask")
        tokens += int(mask.sum() if mask is not None else (batch["input_ids"] != tokenizer.pad_token_id).sum())
        order = (eager, compiled) if i % 2 == 0 else (compiled, eager)
        times = {id(model): step(model, batch)[0] for model in order}
        eager_s.append(times[id(eager)])
        compiled_s.append(times[id(compiled)])
    return {
        "warm_eager": warm_eager, "warm_compiled": warm_compiled, "eager_s": eager_s, "compiled_s": compiled_s,
        "tokens": tokens, "first_loss": (loss_eager, loss_compiled), "threads": torch.get_num_threads(),
        "backend": args.torch_compile_backend or "inductor", "mode": args.torch_compile_mode,
        "settings": train_runs.settings_of(args, eager),
    }  # fmt: skip


def format_result(r: dict, spec: dict) -> str:
    ratios = [e / c for e, c in zip(r["eager_s"], r["compiled_s"], strict=True)]
    gain = statistics.median(ratios)
    eager_step, compiled_step = statistics.median(r["eager_s"]), statistics.median(r["compiled_s"])
    cost = sum(r["warm_compiled"]) - sum(r["warm_eager"])
    saved = eager_step - compiled_step
    pays = (f"after **{cost / saved:,.0f} steps** (~{cost / saved * eager_step / 60:,.0f} min of eager training)"
            if saved > 0 else "**never** (the compiled step is not faster)")  # fmt: skip
    s, n = r["settings"], len(ratios)
    loss_eager, loss_compiled = r["first_loss"]
    return "\n".join([
        f"{spec['preset']}, batch {spec['batch_size']}, max_length {spec['max_length']}, the recommended config "
        f"(bf16={s['bf16']}, padding={s['padding']}, attn={s['attn']}, optim={s['optim']}), {r['threads']} threads; "
        f"`torch.compile(backend={r['backend']!r}, mode={r['mode']!r})`.",
        "",
        "| | eager | compiled |",
        "|---|---|---|",
        f"| compile phase: first {len(r['warm_eager'])} steps (s each) | "
        f"{', '.join(f'{t:.1f}' for t in r['warm_eager'])} | {', '.join(f'{t:.1f}' for t in r['warm_compiled'])} |",
        f"| then {n} interleaved steps: median s/step | {eager_step:.2f} | {compiled_step:.2f} |",
        f"| real tokens/s over those steps | {r['tokens'] / sum(r['eager_s']):,.0f} | "
        f"{r['tokens'] / sum(r['compiled_s']):,.0f} |",
        "",
        f"Compile costs **{cost:.0f} s**; the compiled step is **{gain:.2f}×** the eager one (median of {n} rounds' "
        f"eager ÷ compiled time, range {min(ratios):.2f}–{max(ratios):.2f}), so compile pays {pays}. First-step loss "
        f"on the same weights and batch: eager {loss_eager:.5f}, compiled {loss_compiled:.5f}.",
    ])  # fmt: skip


def run(preset="minimind2-small", batch_size=16, max_length=340, compile_steps=3, rounds=12, data=None, seed=42):
    """Prepare the bench's data and weights, measure in this process, return the markdown."""
    with tempfile.TemporaryDirectory(prefix="bench-compile-") as workdir:
        spec = bench_train.single_run_spec(
            workdir, preset, "ours", batch_size, max_length, compile_steps, rounds, data, seed
        )
        return format_result(measure(spec, compile_steps, rounds), spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="minimind2-small")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=340)
    parser.add_argument("--compile-steps", type=int, default=3, help="steps of each copy counted as compile phase")
    parser.add_argument("--rounds", type=int, default=12, help="interleaved timed steps of each copy")
    parser.add_argument("--data", default=None, help="a MiniMind SFT jsonl instead of the synthetic conversations")
    args = parser.parse_args()
    print(run(args.preset, args.batch_size, args.max_length, args.compile_steps, args.rounds, args.data))


if __name__ == "__main__":
    main()
