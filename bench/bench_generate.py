"""Generation benchmark: `model.generate` (transformers' GenerationMixin + DynamicCache) vs MiniMind's own generate loop.

    .venv/bin/python bench/bench_generate.py --presets minimind2-small,minimind-3 --new-tokens 128

`native_generate` is MiniMind's ``MiniMindForCausalLM.generate`` (model/model_minimind.py) re-implemented minimally:
a Python loop that feeds the tokens the cache has not seen with the attention mask (grown by one column a step, as
MiniMind's eval_llm.py passes the tokenizer's mask), scales the last logits by the temperature, applies repetition
penalty / top-k / top-p in place, samples or takes the argmax, and stops when every row has emitted eos. It runs on
our `MiniMindForCausalLM`, so both sides share the forward pass; the only change from MiniMind is the cache object
(MiniMind keeps a list of (k, v) tuples grown by ``torch.cat``; transformers 5 models take a `Cache`).
Our sampling runs sample as minimind_hf.chat does, through `minimind_hf.generation.FusedSamplingWarper` (the tokens
transformers' temperature / top-k / top-p warpers keep, in one processor); one more run shows a bare
``model.generate(do_sample=True, ...)`` with transformers' own warpers.
`--native-ref PATH` adds MiniMind's own ``generate`` and model from a checkout (minimind-3 architecture), on the same
weights: its greedy tokens must equal the native loop's, and its speed shows the re-implementation is faithful.
The native loop decodes in fp32, as MiniMind does on CPU. The fp32 runs of ours compare the decoding machinery around
the same model; the minimind_hf.chat runs decode as the chat CLI does, in the dtype `minimind_hf.chat.decoding_model`
picks (bf16 on a GPU that has it; on a CPU with native bf16, whichever of bf16 and fp32 decodes faster there), which
is what a user of either tool gets.

Both sides generate exactly ``--new-tokens`` tokens (eos ignored) from the same chat prompts, from random-init weights
(the speed does not depend on them); greedy outputs in the same dtype are checked to be identical. Every round runs
every run once, in reverse order every other round, so a run and its counterpart share the host's state (at batch 1 a
decode step reads every weight from memory, and other tenants' memory traffic moves the rate by ±10% between
seconds). Rates are new tokens per second of wall time, median of ``--repeats`` rounds; a speedup is the median over
the rounds of the two runs' time ratio in that round (`speedup`).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from reference_dir import REFERENCE  # noqa: E402

from minimind_hf import MiniMindConfig, MiniMindForCausalLM  # noqa: E402
from minimind_hf.chat import chat_dtype, decoding_model  # noqa: E402
from minimind_hf.generation import TEMPERATURE, TOP_K, TOP_P, sampling_arguments  # noqa: E402

PROMPTS = (
    "请用三句话介绍一下长江。",
    "What is the difference between a list and a tuple in Python?",
    "帮我写一首关于秋天的短诗。",
    "解释一下为什么天空是蓝色的。",
    "Give me three tips for learning a new language.",
    "计算一下 17 乘以 23 等于多少，并说明步骤。",
    "推荐几本适合初学者的历史书。",
    "How do plants make food from sunlight?",
)


@torch.inference_mode()
def native_generate(
    model,
    input_ids,
    max_new_tokens=8192,
    temperature=0.85,
    top_p=0.85,
    top_k=50,
    eos_token_id=2,
    use_cache=True,
    do_sample=True,
    repetition_penalty=1.0,
    attention_mask=None,
):
    """MiniMind's generate loop (see the module docstring). Returns prompt + new tokens."""
    past_key_values = None
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    for _ in range(max_new_tokens):
        past_len = past_key_values.get_seq_length() if past_key_values is not None else 0
        outputs = model(
            input_ids[:, past_len:],
            attention_mask=attention_mask,
            past_key_values=past_key_values,
            use_cache=use_cache,
        )
        if attention_mask is not None:
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones(attention_mask.shape[0], 1)], -1)
        logits = outputs.logits[:, -1, :] / temperature
        if repetition_penalty != 1.0:
            for i in range(input_ids.shape[0]):
                seen = torch.unique(input_ids[i])
                score = logits[i, seen]
                logits[i, seen] = torch.where(score > 0, score / repetition_penalty, score * repetition_penalty)
        if top_k > 0:
            logits[logits < torch.topk(logits, top_k)[0][..., -1, None]] = -float("inf")
        if top_p < 1.0:
            sorted_logits, sorted_indices = torch.sort(logits, descending=True)
            mask = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1) > top_p
            mask[..., 1:], mask[..., 0] = mask[..., :-1].clone(), 0
            logits[mask.scatter(1, sorted_indices, mask)] = -float("inf")
        if do_sample:
            next_token = torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1)
        else:
            next_token = torch.argmax(logits, dim=-1, keepdim=True)
        if eos_token_id is not None:
            next_token = torch.where(
                finished.unsqueeze(-1), next_token.new_full(next_token.shape, eos_token_id), next_token
            )
        input_ids = torch.cat([input_ids, next_token], dim=-1)
        past_key_values = outputs.past_key_values if use_cache else None
        if eos_token_id is not None:
            finished |= next_token.squeeze(-1).eq(eos_token_id)
            if finished.all():
                break
    return input_ids


def hf_generate(model, input_ids, new_tokens, use_cache=True, do_sample=False, inference_mode=False, **sampling):
    """``model.generate`` for exactly ``new_tokens`` tokens. It runs under ``torch.no_grad`` by itself;
    ``inference_mode=True`` wraps it in ``torch.inference_mode`` as MiniMind's generate is."""
    with torch.inference_mode(inference_mode):
        return model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=new_tokens,
            eos_token_id=None,  # no stop on eos, as on the native side (min_new_tokens would add a logits processor)
            do_sample=do_sample,
            use_cache=use_cache,
            **sampling,
        )


# minimind_hf.chat (the chat CLI, the recipe's sample answers) runs model.generate under torch.inference_mode, as
# MiniMind's generate does, on weights in the dtype `decoding_model` picks (on a CPU with native bf16: bf16 or fp32,
# whichever decodes faster there, so these runs may be fp32 too).
# The fp32 runs decode in native's dtype: the same forward on both sides, so they compare the decoding machinery alone.
# Sampling runs as chat samples (`minimind_hf.generation.sampling_arguments`: one fused warper); the run with
# transformers' own three warpers shows what a bare `model.generate(do_sample=True, ...)` costs.
GREEDY, GREEDY_INFERENCE, SAMPLING_INFERENCE, SAMPLING_HF_WARPERS, NATIVE, NATIVE_SAMPLING = (
    "ours: model.generate (its own no_grad), fp32, cache",
    "ours: model.generate under torch.inference_mode, fp32, cache",
    "ours: model.generate under torch.inference_mode, fp32, sampling, cache",
    "ours: model.generate under torch.inference_mode, fp32, sampling with transformers' warpers, cache",
    "native loop, fp32, cache",
    "native loop, fp32, sampling, cache",
)
NATIVE_REF, NATIVE_REF_SAMPLING = (
    "MiniMind's own generate and model (--native-ref), fp32, cache",
    "MiniMind's own generate and model (--native-ref), fp32, sampling, cache",
)


def ref_generate(model, input_ids, new_tokens, **kwargs):
    """MiniMind's own ``MiniMindForCausalLM.generate`` (a checkout's model) for exactly ``new_tokens`` tokens, called
    as its eval_llm.py does (with the attention mask)."""
    return model.generate(
        input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=new_tokens, eos_token_id=None, **kwargs
    )


def load_native_ref(path: str, model):
    """MiniMind's model from the checkout at ``path`` with ``model``'s weights (loaded strictly), fp32, eval."""
    import tempfile

    from native_ref import build_model, import_checkout

    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        ref, _ = build_model(import_checkout(path)[0], model.config, folder)
    return ref.to(device=model.device, dtype=torch.float32).eval()


def chat_run_names(dtype: torch.dtype) -> tuple[str, str]:
    """Names of the two minimind_hf.chat runs (greedy, sampling) when chat decodes in ``dtype``."""
    name = str(dtype).removeprefix("torch.")
    return (
        f"ours: minimind_hf.chat's path (inference_mode, its default dtype here: {name}), cache",
        f"ours: minimind_hf.chat's path (inference_mode, its default dtype here: {name}), sampling, cache",
    )


def measure(
    model, input_ids, new_tokens, repeats, device, no_cache=True, chat_model=None, ref_model=None
) -> list[dict]:
    """Each run: median tokens/s over ``repeats`` interleaved rounds (their times kept for `speedup`), its native
    counterpart, greedy-output check.
    ``chat_model`` (the model as minimind_hf.chat decodes with it, `decoding_model`) adds the two chat runs;
    ``ref_model`` (MiniMind's own, `load_native_ref`) adds its generate, greedy and sampling."""
    sampling = {"temperature": TEMPERATURE, "top_p": TOP_P, "top_k": TOP_K}
    chat_sampling = {"inference_mode": True, **sampling_arguments(TEMPERATURE, TOP_K, TOP_P)}
    mask = {"attention_mask": torch.ones_like(input_ids)}
    greedy = {"eos_token_id": None, "do_sample": False, **mask}
    runs = {  # name -> (function, keyword arguments, native counterpart, model); called as fn(model, input_ids, n, **kw)
        GREEDY: (hf_generate, {}, NATIVE, model),
        GREEDY_INFERENCE: (hf_generate, {"inference_mode": True}, NATIVE, model),
        NATIVE: (native_generate, greedy, None, model),
        SAMPLING_INFERENCE: (hf_generate, chat_sampling, NATIVE_SAMPLING, model),
        SAMPLING_HF_WARPERS: (
            hf_generate, {"do_sample": True, "inference_mode": True, **sampling}, NATIVE_SAMPLING, model,
        ),
        NATIVE_SAMPLING: (native_generate, {"eos_token_id": None, **mask, **sampling}, None, model),
    }  # fmt: skip
    if ref_model is not None:
        runs[NATIVE_REF] = (ref_generate, {"do_sample": False}, NATIVE, ref_model)
        runs[NATIVE_REF_SAMPLING] = (ref_generate, sampling, NATIVE_SAMPLING, ref_model)
    if chat_model is not None:
        chat_greedy, chat_sampling_run = chat_run_names(chat_model.dtype)
        runs[chat_greedy] = (hf_generate, {"inference_mode": True}, NATIVE, chat_model)
        runs[chat_sampling_run] = (hf_generate, chat_sampling, NATIVE_SAMPLING, chat_model)
    if no_cache:
        runs["ours: model.generate, fp32, no cache"] = (
            hf_generate, {"use_cache": False}, "native loop, fp32, no cache", model,
        )  # fmt: skip
        runs["native loop, fp32, no cache"] = (native_generate, {**greedy, "use_cache": False}, None, model)
    for fn, kwargs, _, run_model in runs.values():
        fn(run_model, input_ids, 8, **kwargs)
    outputs, times = {}, {name: [] for name in runs}
    for round_index in range(repeats):
        order = list(runs.items())
        for name, (fn, kwargs, _, run_model) in order[:: -1 if round_index % 2 else 1]:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = fn(run_model, input_ids, new_tokens, **kwargs)
            if device == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
            assert out.shape == (input_ids.shape[0], input_ids.shape[1] + new_tokens), (name, out.shape)
            outputs[name] = out
    return [
        {
            "run": name,
            "baseline": baseline,
            "dtype": str(run_model.dtype).removeprefix("torch."),
            "tok_s": input_ids.shape[0] * new_tokens / statistics.median(times[name]),
            "times": times[name],
            # greedy tokens are compared in the same dtype only: bf16 rounds every weight
            "same_greedy_tokens": torch.equal(outputs[name], outputs[baseline])
            if baseline and "sampling" not in name and run_model.dtype == model.dtype
            else None,
        }
        for name, (_, _, baseline, run_model) in runs.items()
    ]


def speedup(run: dict, other: dict) -> float:
    """How many times faster ``run`` is than ``other`` (two results of one `measure`): the median over the rounds of
    other's time ÷ run's time in the same round."""
    return statistics.median(theirs / ours for ours, theirs in zip(run["times"], other["times"], strict=True))


def prompts_batch(tokenizer, batch_size: int) -> torch.Tensor:
    """``batch_size`` chat prompts cut to a common length, so no padding is involved on either side."""
    rows = []
    for i in range(batch_size):
        messages = [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        rows.append(tokenizer(text, add_special_tokens=False).input_ids)
    width = min(len(r) for r in rows)
    return torch.tensor([r[-width:] for r in rows])


def run_generate_bench(
    presets, new_tokens=128, batch_sizes=(1, 8), repeats=3, device=None, log=print, native_ref=None
):
    """Every run of `measure` for each preset and batch size; ``native_ref`` (a MiniMind checkout) adds MiniMind's own
    generate on the presets of its architecture (not minimind2: MiniMind's current code is minimind-3)."""
    from transformers import AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    results = []
    for preset in presets:
        tokenizer_name = "minimind2-tokenizer" if preset.startswith("minimind2") else "minimind3-tokenizer"
        tokenizer = AutoTokenizer.from_pretrained(REFERENCE / tokenizer_name)
        torch.manual_seed(0)
        model = MiniMindForCausalLM(MiniMindConfig.from_preset(preset, use_cache=True))
        model.config._attn_implementation = "sdpa"
        model.to(device=device, dtype=torch.float32).eval()
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        chat_model = decoding_model(copy.deepcopy(model).to(chat_dtype(device)), device)  # what chat decodes with
        ref_model = load_native_ref(native_ref, model) if native_ref and not preset.startswith("minimind2") else None
        for batch_size in batch_sizes:
            input_ids = prompts_batch(tokenizer, batch_size).to(device)
            runs = measure(model, input_ids, new_tokens, repeats, device, batch_size == 1, chat_model, ref_model)
            for run in runs:
                results.append({"preset": preset, "batch_size": batch_size, "prompt_tokens": input_ids.shape[1],
                                "new_tokens": new_tokens, "device": device, **run})  # fmt: skip
            rates = ", ".join(f"{r['run'].removeprefix('ours: ')} {r['tok_s']:,.0f}" for r in runs)
            log(f"  {preset} batch {batch_size} (tok/s): {rates}")
    return results


def format_generate_table(results) -> str:
    lines = [
        "| model | batch | run | new tokens/s | × native loop (same mode) | greedy tokens identical to native |",
        "|---|---|---|---|---|---|",
    ]
    by = {(r["preset"], r["batch_size"], r["run"]): r for r in results}
    for r in results:
        base = by.get((r["preset"], r["batch_size"], r["baseline"])) if r["baseline"] else r
        ratio = f"{speedup(r, base):.2f}×" if base else "–"
        same = {True: "yes", False: "NO", None: "–"}[r["same_greedy_tokens"]]
        lines.append(f"| {r['preset']} | {r['batch_size']} | {r['run']} | {r['tok_s']:,.0f} | {ratio} | {same} |")
    first = results[0]
    lines += [
        "",
        f"Prompt {first['prompt_tokens']} tokens (chat-formatted, batch rows cut to one length), {first['new_tokens']} "
        f"new tokens on {first['device']}, SDPA; the native loop in float32, each of ours in the dtype its name gives; "
        "sampling = MiniMind's defaults (temperature 0.85, top-p 0.85, top-k 50).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="minimind2-small,minimind-3")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--native-ref", default=None, metavar="PATH", help="a MiniMind checkout: add MiniMind's own generate"
    )
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    results = run_generate_bench(
        args.presets.split(","),
        args.new_tokens,
        [int(b) for b in args.batch_sizes.split(",")],
        args.repeats,
        native_ref=args.native_ref,
    )
    print(format_generate_table(results))


if __name__ == "__main__":
    main()
