"""MoE training-step time on CPU: our expert dispatch against MiniMind's, on the same minimind-3-moe model in one run.

Variants, each timing training forwards with labels plus backward (the optimizer step, identical for all, is left out)
on the same fixed batch:
* ``minimind``: MiniMind's training dispatch (``MOEFeedForward.forward`` in its ``model_minimind.py``, re-implemented):
  every token row repeated k times, one boolean-mask gather and scatter per expert, idle experts kept in the graph;
* ``per_expert``: this repository's previous dispatch (``torch.where`` per expert with a ``numel() > 0`` branch);
* ``ours``: the current ``MiniMindSparseMoeBlock`` (one sort, contiguous slices, one host sync per layer).
The rest of the model (attention, LM head with ``skip_logits=False``, the aux loss) is the same for all three, so the
differences are the dispatch. Each round runs every variant, in reverse order every other round; the figure is each
one's median step time.

    .venv/bin/python bench/bench_moe.py --preset minimind-3-moe --batch 8 --seq 256 --rounds 4 --steps 3
"""

import argparse
import statistics
import time
from contextlib import contextmanager

import torch

from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.modeling_minimind import MiniMindSparseMoeBlock


def dispatch_minimind(block, x, topk_idx, topk_weight):
    flat_idx = topk_idx.reshape(-1)
    x = x.repeat_interleave(block.top_k, dim=0)
    y = torch.empty_like(x)
    for e, expert in enumerate(block.experts):
        picked = flat_idx == e
        out = expert(x[picked])
        if out.shape[0] == 0:
            out = out + 0 * sum(p.sum() for p in expert.parameters())
        y[picked] = out.to(y.dtype)
    return (y.view(*topk_weight.shape, -1) * topk_weight.unsqueeze(-1).to(y.dtype)).sum(dim=1)


def dispatch_per_expert(block, x, topk_idx, topk_weight):
    out = torch.zeros_like(x)
    for e, expert in enumerate(block.experts):
        token_idx, slot = torch.where(topk_idx == e)
        if token_idx.numel() > 0:
            weight = topk_weight[token_idx, slot, None]
            out.index_add_(0, token_idx, (expert(x[token_idx]) * weight).to(out.dtype))
        elif block.training:
            out = out + 0.0 * sum(p.sum() for p in expert.parameters())
    return out


VARIANTS = {"minimind": dispatch_minimind, "per_expert": dispatch_per_expert, "ours": None}


@contextmanager
def using(dispatch):
    original = MiniMindSparseMoeBlock._dispatch_sorted
    MiniMindSparseMoeBlock._dispatch_sorted = dispatch or original
    try:
        yield
    finally:
        MiniMindSparseMoeBlock._dispatch_sorted = original


def train_steps(model, batch, steps, dispatch):
    with using(dispatch):
        times, losses = [], []
        for _ in range(steps):
            start = time.perf_counter()
            loss = model(batch, labels=batch, skip_logits=False).loss
            loss.backward()
            model.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - start)
            losses.append(loss.item())
        return times, losses


def run(preset="minimind-3-moe", batch_size=8, seq_len=256, rounds=4, steps=3, log=print) -> str:
    """The comparison as a markdown table (plus the gradient check), for bench/run.py and `main`."""
    torch.manual_seed(0)
    config = MiniMindConfig.from_preset(preset, attn_implementation="sdpa")
    initial = MiniMindForCausalLM(config).state_dict()
    batch = torch.randint(3, config.vocab_size, (batch_size, seq_len))
    model = MiniMindForCausalLM(config).train()

    # Same weights, same batch: the three dispatches compute the same loss and gradients.
    grads = {}
    for name, dispatch in VARIANTS.items():
        model.load_state_dict(initial)
        model.zero_grad()
        with using(dispatch):
            model(batch[:2, :64], labels=batch[:2, :64], skip_logits=False).loss.backward()
        grads[name] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    errors = {name: (grads[name] - grads["ours"]).abs().max().item() for name in ("minimind", "per_expert")}
    log(f"max |grad - grad(ours)|: {errors}")

    results = {name: [] for name in VARIANTS}
    for round_ in range(rounds + 1):  # round 0 warms up; the order flips every round, so host drift hits all alike
        for name, dispatch in list(VARIANTS.items())[:: -1 if round_ % 2 else 1]:
            model.load_state_dict(initial)
            times, _ = train_steps(model, batch, steps, dispatch)
            if round_:
                results[name] += times
        log(f"round {round_}: " + ", ".join(f"{n} {statistics.median(t):.2f}s" for n, t in results.items() if t))
    tokens, base = batch_size * seq_len, statistics.median(results["minimind"])
    lines = [
        f"{preset}, batch {batch_size} x {seq_len}, fp32, {torch.get_num_threads()} threads, median of "
        f"{rounds} x {steps} steps; gradients equal to MiniMind's dispatch within {max(errors.values()):.1e}.",
        "",
        "| dispatch | median forward+backward (s) | tokens/s | vs MiniMind |",
        "|---|---|---|---|",
    ]
    for name, times in results.items():
        median = statistics.median(times)
        lines.append(f"| {name} | {median:.3f} | {tokens / median:,.0f} | {base / median:.2f}x |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="minimind-3-moe")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant per round")
    args = parser.parse_args()
    print(run(args.preset, args.batch, args.seq, args.rounds, args.steps))


if __name__ == "__main__":
    main()
