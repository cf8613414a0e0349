"""Chat with a trained MiniMind: streaming, multi-turn, through `model.generate` and the chat template.

    python -m minimind_hf.chat outputs/minimind-tiny-sft                       # interactive; /clear, /exit
    python -m minimind_hf.chat outputs/minimind-tiny-sft --prompt "你好" --greedy
    python -m minimind_hf.chat outputs/lora-adapter --system "You are MiniMind." --temperature 0.7

A folder holding a LoRA adapter (adapter_config.json) is loaded with its base model through peft.
"""

import argparse
import json
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TextStreamer

from .generation import TEMPERATURE, TOP_P
from .guards import first_non_finite
from .hardware import bf16_supported
from .model_folder import check_model_folder
from .native import CheckpointError


def chat_dtype(device: str, dtype: str = "auto") -> torch.dtype:
    """The dtype to decode in. "auto": bf16 where the device computes it natively (Ampere+ GPUs, CPUs with AMX /
    AVX512-BF16: the rule training's `bf16` default uses), else fp32. Decoding a token reads every weight once, so half
    the bytes per weight decodes faster: see docs/benchmarks.md for the figures."""
    if dtype != "auto":
        return getattr(torch, dtype)
    return torch.bfloat16 if bf16_supported(use_cpu=not device.startswith("cuda")) else torch.float32


def load_model_for_chat(path: str, device: str | None = None, dtype: str = "auto"):
    """(model, tokenizer) from a full-model folder or hub id, or from a LoRA adapter folder (base + adapter), in
    `chat_dtype(device, dtype)`."""
    import minimind_hf  # noqa: F401  (registers MiniMind with the Auto classes)

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
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model.to(device).eval(), tokenizer


def read_prompts(path: str) -> list[dict]:
    """JSONL of {"prompt": ..., "reference": ...} (reference optional)."""
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
        lines = [f"[{i + 1}] prompt:    {sample['prompt']}"]
        if before is not None:
            lines.append(f"    before:    {_shorten(before[i])!r}")
        lines.append(f"    model:     {answer!r}")
        if "reference" in sample:
            lines.append(f"    reference: {sample['reference']!r}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _answer(model, tokenizer, messages, args) -> str:
    inputs = chat_inputs(tokenizer, messages, model.device, think=args.think)
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    sampling = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    if not args.greedy:
        sampling = {"do_sample": True, "temperature": args.temperature, "top_p": args.top_p, "top_k": args.top_k}
    with torch.inference_mode():
        output = model.generate(
            **inputs,
            streamer=streamer,
            max_new_tokens=args.max_new_tokens,
            repetition_penalty=args.repetition_penalty,
            **sampling,
        )
    text = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return text.split("</think>")[-1].strip()  # history keeps the answer, as the template re-renders reasoning


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="minimind-hf chat", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="Output folder of recipes/sft.py (full model or LoRA adapter) or a hub id")
    parser.add_argument("--prompt", help="Answer this one prompt and exit")
    parser.add_argument("--system", help="System prompt for the conversation")
    parser.add_argument("--max_new_tokens", type=int, default=512)
    parser.add_argument("--temperature", type=float, default=TEMPERATURE)
    parser.add_argument("--top_p", type=float, default=TOP_P)
    parser.add_argument("--top_k", type=int, default=None)
    parser.add_argument("--repetition_penalty", type=float, default=1.0)
    parser.add_argument("--greedy", action="store_true", help="Greedy decoding instead of sampling")
    parser.add_argument("--think", action="store_true", help="Let the model write its <think> reasoning first")
    parser.add_argument("--seed", type=int, default=None, help="Seed sampling for reproducible answers")
    parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda if available)")
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="Weights' dtype (default: bf16 where the device has it natively, see chat_dtype)",
    )
    args = parser.parse_args(argv)

    if args.seed is not None:
        torch.manual_seed(args.seed)
    model, tokenizer = load_model_for_chat(args.model, args.device, args.dtype)
    system = [{"role": "system", "content": args.system}] if args.system else []
    if args.prompt is not None:
        _answer(model, tokenizer, [*system, {"role": "user", "content": args.prompt}], args)
        return

    print(f"Chatting with {args.model}. /clear starts over, /exit (or Ctrl-D) quits.", file=sys.stderr)
    history = []
    while True:
        try:
            user = input("\nuser> ").strip()
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return
        if user in ("/exit", "/quit"):
            return
        if user == "/clear":
            history = []
            continue
        if not user:
            continue
        history.append({"role": "user", "content": user})
        print("assistant> ", end="", flush=True)
        history.append({"role": "assistant", "content": _answer(model, tokenizer, [*system, *history], args)})


if __name__ == "__main__":
    main()
