"""Packed attention on CPU: torch's flash kernel against the model's eager attention, per packed sample, in one run.

``sdpa_packed`` (minimind_hf/packed_attention.py) runs causal attention on each sample of a packed row. Each sample
takes torch's ``scaled_dot_product_attention(is_causal=True)`` (on CPU: its flash kernel), except short samples in
half precision on CPU, which take the model's eager attention (``EAGER_MAX_LENGTH``). This bench times the function
itself, forward plus backward of one layer's attention over one packed row with its inputs as training hands them
over (Trainer's bf16 autocast: rope leaves query and key in float32, value in bfloat16), with the eager path off
(``flash``: every sample to the kernel), on for every sample (``eager``) and as shipped:
* rows of 16 samples of one length each, to show where the two cross (the shipped cut-off);
* a row of 16 samples of 60-340 tokens (sft_512-like, the training bench's batch), in bf16 autocast and float32;
* the whole model (random weights) on that row, one forward and backward under bf16 autocast, the two paths
  alternating step by step: what the attention path is worth in a training step.

Each round runs every variant, in reverse order every other round; the figure is each one's median time. The last
column is the largest difference of the eager path's output and gradients from the kernel's, relative to the
kernel's largest value (bfloat16 rounding).

    .venv/bin/python bench/bench_packed_attention.py --preset minimind2-small --rounds 7
"""

import argparse
import statistics
import time
from contextlib import contextmanager

import torch

import minimind_hf.packed_attention as packed
from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.modeling_minimind import MiniMindAttention

SAMPLES = 16
LENGTHS = (64, 128, 192, 256, 384, 512, 768)
VARIANTS = {"flash": 0, "eager": max(LENGTHS), "shipped": packed.EAGER_MAX_LENGTH}


@contextmanager
def eager_up_to(length: int):
    shipped = packed.EAGER_MAX_LENGTH
    packed.EAGER_MAX_LENGTH = length
    try:
        yield
    finally:
        packed.EAGER_MAX_LENGTH = shipped


def packed_inputs(module, lengths, autocast: bool, seed=0):
    """query, key, value and the gradient of the output for one packed row, in the dtypes the attention layer hands
    them over in: under bf16 autocast float32 query and key (rope's float32 cos and sin) and bfloat16 value."""
    generator = torch.Generator().manual_seed(seed)
    total, config = sum(lengths), module.config
    heads, kv_heads, head_dim = config.num_attention_heads, config.num_key_value_heads, module.head_dim
    query, key, value = (torch.randn(1, n, total, head_dim, generator=generator) for n in (heads, kv_heads, kv_heads))
    grad_out = torch.randn(1, total, heads, head_dim, generator=generator)
    position_ids = torch.cat([torch.arange(n) for n in lengths])[None]
    return (query, key, value.bfloat16() if autocast else value), grad_out, position_ids


def forward_backward(module, inputs, grad_out, position_ids, autocast: bool) -> tuple[float, torch.Tensor]:
    """Seconds for one forward and backward, and the output and input gradients flattened into one tensor."""
    query, key, value = (x.detach().requires_grad_() for x in inputs)
    start = time.perf_counter()
    with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
        out, _ = packed.packed_sdpa_attention_forward(module, query, key, value, None, position_ids=position_ids)
    out.float().backward(grad_out)
    seconds = time.perf_counter() - start
    return seconds, torch.cat([t.detach().float().flatten() for t in (out, query.grad, key.grad, value.grad)])


def interleaved(variants: dict[str, int], step, rounds) -> tuple[dict[str, float], dict]:
    """``step()`` -> (seconds, result) under each variant's ``EAGER_MAX_LENGTH``, every variant once per round in
    reverse order every other round (round 0 warms up): each one's median seconds and its last result."""
    times, results = {name: [] for name in variants}, {}
    for round_ in range(rounds + 1):
        for name, limit in list(variants.items())[:: -1 if round_ % 2 else 1]:
            with eager_up_to(limit):
                seconds, results[name] = step()
            if round_:
                times[name].append(seconds)
    return {name: statistics.median(t) for name, t in times.items()}, results


def measure(module, lengths, autocast: bool, rounds) -> tuple[dict[str, float], float]:
    """Median forward+backward seconds per variant, and the largest difference of the eager path's output and
    gradients from the flash kernel's, relative to the kernel's largest."""
    inputs, grad_out, position_ids = packed_inputs(module, lengths, autocast)
    times, results = interleaved(
        VARIANTS, lambda: forward_backward(module, inputs, grad_out, position_ids, autocast), rounds
    )
    difference = ((results["eager"] - results["flash"]).abs().max() / results["flash"].abs().max()).item()
    return times, difference


def model_step(model, input_ids, position_ids) -> tuple[float, float]:
    """Seconds for one forward and backward of the whole model on one packed row under bf16 autocast, and its loss."""
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    with torch.autocast("cpu", torch.bfloat16):
        loss = model(input_ids=input_ids, position_ids=position_ids, labels=input_ids).loss
    loss.backward()
    return time.perf_counter() - start, loss.item()


def measure_model(config, lengths, rounds) -> tuple[dict[str, float], float]:
    """Median step seconds of the model with the eager path off (``flash``) and as shipped, alternating step by step,
    and the difference of their losses."""
    torch.manual_seed(0)
    model = MiniMindForCausalLM(config).train()
    model.set_attn_implementation(packed.PACKED_SDPA)
    generator = torch.Generator().manual_seed(2)
    input_ids = torch.randint(0, config.vocab_size, (1, sum(lengths)), generator=generator)
    position_ids = torch.cat([torch.arange(n) for n in lengths])[None]
    variants = {name: VARIANTS[name] for name in ("flash", "shipped")}
    times, losses = interleaved(variants, lambda: model_step(model, input_ids, position_ids), rounds)
    return times, abs(losses["shipped"] - losses["flash"])


def run(preset="minimind2-small", rounds=7, lengths=LENGTHS, log=print) -> str:
    """The comparison as a markdown table, for bench/run.py and `main`."""
    config = MiniMindConfig.from_preset(preset)
    module = MiniMindAttention(config, layer_idx=0).train()
    mixed = torch.randint(60, 341, (SAMPLES,), generator=torch.Generator().manual_seed(1)).tolist()
    cases = [(f"{SAMPLES} x {n}", [n] * SAMPLES, True) for n in lengths]
    cases += [(f"{SAMPLES} x 60-340 (sft_512-like)", mixed, autocast) for autocast in (True, False)]
    lines = [
        f"{preset} attention ({config.num_attention_heads} heads, {config.num_key_value_heads} kv heads, head_dim "
        f"{module.head_dim}), one packed row, forward + backward of one layer, {torch.get_num_threads()} threads, "
        f"median of {rounds} interleaved rounds. `shipped` takes the eager path for samples up to "
        f"{packed.EAGER_MAX_LENGTH} tokens in half precision on CPU; speed-up = flash time / shipped time.",
        "",
        "| packed row | precision | flash (ms) | eager (ms) | shipped (ms) | speed-up | max abs(eager - flash) / max abs(flash) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, lengths, autocast in cases:
        result, difference = measure(module, lengths, autocast, rounds)
        precision = "bf16 autocast" if autocast else "fp32"
        ms = {name: f"{seconds * 1e3:.1f}" for name, seconds in result.items()}
        ratio = result["flash"] / result["shipped"]
        lines.append(
            f"| {label} | {precision} | {ms['flash']} | {ms['eager']} | {ms['shipped']} | {ratio:.2f}x | {difference:.1e} |"
        )
        log(lines[-1])
    result, difference = measure_model(config, mixed, rounds)
    lines += [
        "",
        f"The whole {preset} model (random weights) on the {SAMPLES} x 60-340 row ({sum(mixed)} tokens), one forward "
        f"and backward under bf16 autocast, the two paths alternating step by step, median of {rounds}:",
        "",
        "| packed row | flash (s/step) | shipped (s/step) | speed-up | abs(loss shipped - loss flash) |",
        "|---|---|---|---|---|",
        f"| {SAMPLES} x 60-340 (sft_512-like), whole model | {result['flash']:.2f} | {result['shipped']:.2f} | "
        f"{result['flash'] / result['shipped']:.2f}x | {difference:.1e} |",
    ]
    log(lines[-1])
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="minimind2-small")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per variant and row")
    args = parser.parse_args()
    print(run(args.preset, args.rounds))


if __name__ == "__main__":
    main()
