"""Chat with a trained MiniMind: streaming, multi-turn, through `model.generate` and the chat template.

    python -m minimind_hf.chat outputs/minimind-tiny-sft                       # interactive; /clear, exit, Ctrl-C
    python -m minimind_hf.chat outputs/minimind-tiny-sft --prompt "你好" --greedy
    python -m minimind_hf.chat outputs/lora-adapter --system "You are MiniMind." --temperature 0.7

A folder holding a LoRA adapter (adapter_config.json) is loaded with its base model through peft.
"""

import argparse
import copy
import json
import signal
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList, TextStreamer

from .errors import CheckpointError, user_errors
from .generation import TEMPERATURE, TOP_K, TOP_P, sampling_arguments
from .hardware import bf16_supported
from .integrity import first_non_finite
from .locations import check_pretrained
from .model_folder import check_model_folder

# On a CPU, bf16 must decode at least this much faster than fp32 to be kept (fp32 is exact and MiniMind's CPU dtype).
BF16_MIN_SPEEDUP = 1.1


def chat_dtype(device: str, dtype: str = "auto") -> torch.dtype:
    """The dtype to load the weights in. "auto": bf16 on GPUs that compute it natively (Ampere+), else fp32; on a CPU
    that computes bf16 natively (AMX / AVX512-BF16) `load_model_for_chat` then times both (`faster_decode`)."""
    if dtype != "auto":
        return getattr(torch, dtype)
    on_gpu = device.startswith("cuda")
    return torch.bfloat16 if on_gpu and bf16_supported() else torch.float32


@torch.inference_mode()
def decode_step_seconds(models: list, steps: int = 5) -> list[float]:
    """Median seconds of one chat decode step (batch 1, one new token after a 32-token prompt, with the cache) for
    each model, the models' steps interleaved so that the host's drift hits them alike."""
    prompt = torch.zeros((1, 32), dtype=torch.long, device=models[0].device)
    caches = [model(prompt, use_cache=True).past_key_values for model in models]  # also the warm-up
    times = [[] for _ in models]
    for _ in range(steps):
        for i, model in enumerate(models):
            start = time.perf_counter()
            caches[i] = model(prompt[:, :1], past_key_values=caches[i], use_cache=True).past_key_values
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def faster_decode(model):
    """``model`` (fp32, on a CPU that computes bf16 natively) or its bf16 copy, whichever decodes faster here, and
    bf16's measured speed over fp32. bf16 halves the bytes a decode step reads, but at batch 1 the CPU's bf16 matmul can
    cost more than that saves (oneDNN's AMX kernel packs the weight again on every call): measured with
    bench/bench_generate.py, bf16 decodes 0.85× fp32 on an Intel Xeon with AMX and 1.5× on an AMD EPYC with
    AVX512-BF16. So it is timed, not assumed; bf16 is kept only when `BF16_MIN_SPEEDUP` times faster."""
    candidate = copy.deepcopy(model).to(torch.bfloat16)
    fp32_seconds, bf16_seconds = decode_step_seconds([model, candidate])
    speedup = fp32_seconds / bf16_seconds
    return (candidate if speedup >= BF16_MIN_SPEEDUP else model), speedup


def load_model_for_chat(path: str, device: str | None = None, dtype: str = "auto"):
    """(model, tokenizer) from a full-model folder or hub id, or from a LoRA adapter folder (base + adapter), in
    `chat_dtype(device, dtype)`, then `decoding_model`."""
    import minimind_hf  # noqa: F401  (registers MiniMind with the Auto classes)

    check_pretrained(path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = chat_dtype(device, dtype)
    if Path(path, "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    else:
        check_model_folder(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    broken = first_non_finite(model)
    if broken is not None:
        raise CheckpointError(
            f"{path}: weight {broken} holds NaN/inf values: the weights file is corrupt, or was saved from a run "
            "that diverged"
        )
    return decoding_model(model.to(device).eval(), device, dtype), AutoTokenizer.from_pretrained(path)


def decoding_model(model, device: str, dtype: str = "auto"):
    """``model``, loaded in `chat_dtype(device, dtype)` and on ``device``, as chat decodes with it: on a CPU with
    native bf16 and "auto", the faster of it and its bf16 copy (`faster_decode`; the choice is printed to stderr)."""
    if dtype != "auto" or device != "cpu" or not bf16_supported(use_cpu=True):
        return model
    model, speedup = faster_decode(model)
    kept, other = ("bfloat16", "float32") if model.dtype == torch.bfloat16 else ("float32", "bfloat16")
    print(f"(decoding in {kept}: bfloat16 runs {speedup:.2f}× float32 on this CPU; --dtype {other} to change)",
          file=sys.stderr)  # fmt: skip
    return model


def read_prompts(path: str) -> list[dict]:
    """JSONL of {"prompt": ..., "reference": ..., "seen": true/false} (reference and seen optional)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def chat_inputs(tokenizer, messages: list[dict], device, think: bool = False) -> dict:
    """The generation prompt exactly as every runtime builds it: the chat template's text, tokenized plainly. The
    shipped tokenizer keeps newlines apart (recipes/train_tokenizer.py `newline_alone`), so these are also the ids
    training puts before each answer."""
    return tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, open_thinking=think, return_dict=True, return_tensors="pt"
    ).to(device)


@torch.inference_mode()  # as MiniMind's generate decodes
def generate_answers(model, tokenizer, prompts: list[str], max_new_tokens: int = 96) -> list[str]:
    """Greedy single-turn answers, one prompt at a time (no padding to get wrong)."""
    was_training = model.training
    model.eval()
    answers = []
    for prompt in prompts:
        inputs = chat_inputs(tokenizer, [{"role": "user", "content": prompt}], model.device)
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, top_p=None, temperature=None)
        answers.append(tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip())
    model.train(was_training)
    return answers


def format_answers(samples: list[dict], answers: list[str], before: list[str] | None = None) -> str:
    """Prompt, reference, and the model's answer (and its answer before training) per sample."""
    blocks = []
    for i, (sample, answer) in enumerate(zip(samples, answers, strict=True)):
        seen = {True: " (in the training data)", False: " (held out: not in the training data)"}.get(
            sample.get("seen"), ""
        )
        lines = [f"[{i + 1}] prompt:    {sample['prompt']}{seen}"]
        if before is not None:
            lines.append(f"    before:    {_shorten(before[i])!r}")
        lines.append(f"    model:     {answer!r}")
        if "reference" in sample:
            lines.append(f"    reference: {sample['reference']!r}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class StopOnInterrupt(StoppingCriteria):
    """Ctrl-C while an answer streams ends that answer (generate returns what it has) instead of the session; a
    second Ctrl-C during the same answer interrupts as usual."""

    def __init__(self):
        self.interrupted = False

    def __call__(self, input_ids, scores, **kwargs) -> bool:
        return self.interrupted

    def __enter__(self):
        self.interrupted = False
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)

    def _on_sigint(self, signum, frame):
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True


def _answer(model, tokenizer, messages, args, stop: StopOnInterrupt | None = None) -> str:
    inputs = chat_inputs(tokenizer, messages, model.device, think=args.think)
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    sampling = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    if not args.greedy:
        sampling = sampling_arguments(args.temperature, args.top_k, args.top_p)
    with torch.inference_mode():
        output = model.generate(
            **inputs,
            streamer=streamer,
            max_new_tokens=args.max_new_tokens,
            repetition_penalty=args.repetition_penalty,
            stopping_criteria=StoppingCriteriaList([stop] if stop is not None else []),
            **sampling,
        )
    text = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return text.split("</think>")[-1].strip()  # history keeps the answer, as the template re-renders reasoning


EXIT_COMMANDS = ("/exit", "/quit", "exit", "quit")


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 after /exit, exit, quit or Ctrl-D; 130 after Ctrl-C at the prompt; 1 for a model that cannot
    be loaded (via `minimind_hf.errors.user_errors`); 2 for bad arguments."""
    parser = argparse.ArgumentParser(prog="minimind-hf chat", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="Output folder of recipes/sft.py (full model or LoRA adapter) or a hub id")
    parser.add_argument("--prompt", help="Answer this one prompt and exit")
    parser.add_argument("--system", help="System prompt for the conversation")
    parser.add_argument("--max_new_tokens", type=int, default=512)
    parser.add_argument("--temperature", type=float, default=TEMPERATURE)
    parser.add_argument("--top_p", type=float, default=TOP_P)
    parser.add_argument("--top_k", type=int, default=TOP_K, help="0 turns top-k off")
    parser.add_argument("--repetition_penalty", type=float, default=1.0)
    parser.add_argument("--greedy", action="store_true", help="Greedy decoding instead of sampling")
    parser.add_argument("--think", action="store_true", help="Let the model write its <think> reasoning first")
    parser.add_argument("--seed", type=int, default=None, help="Seed sampling for reproducible answers")
    parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda if available)")
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="Weights' dtype (default: bf16 on GPUs that have it natively; on a CPU with native bf16, whichever of "
        "bf16 and fp32 decodes faster there, timed at load)",
    )
    args = parser.parse_args(argv)
    if not args.greedy:
        try:
            sampling_arguments(args.temperature, args.top_k, args.top_p)
        except ValueError as error:
            parser.error(f"{error} (or --greedy)")

    if args.seed is not None:
        torch.manual_seed(args.seed)
    model, tokenizer = load_model_for_chat(args.model, args.device, args.dtype)
    system = [{"role": "system", "content": args.system}] if args.system else []
    if args.prompt is not None:
        _answer(model, tokenizer, [*system, {"role": "user", "content": args.prompt}], args)
        return 0

    print(
        f"Chatting with {args.model}. /clear starts over; exit, /exit or Ctrl-D quits; Ctrl-C stops an answer.",
        file=sys.stderr,
    )
    history, stop = [], StopOnInterrupt()
    while True:
        try:
            user = input("\nuser> ").strip()
        except EOFError:
            print(file=sys.stderr)
            return 0
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 130
        if user in EXIT_COMMANDS:
            return 0
        if user == "/clear":
            history = []
            print("(conversation cleared: the next message starts a new one)", file=sys.stderr)
            continue
        if user.startswith("/"):
            print(f"(unknown command {user}: /clear, /exit)", file=sys.stderr)
            continue
        if not user:
            continue
        history.append({"role": "user", "content": user})
        print("assistant> ", end="", flush=True)
        with stop:
            answer = _answer(model, tokenizer, [*system, *history], args, stop)
        if stop.interrupted:
            print("\n(answer stopped; the conversation continues with what was said so far)", file=sys.stderr)
        history.append({"role": "assistant", "content": answer})


if __name__ == "__main__":
    with user_errors("minimind-hf chat"):
        sys.exit(main())
