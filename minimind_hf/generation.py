"""The generation settings saved with every model this package writes, so any runtime stops and samples alike, and
the sampling step minimind_hf.chat decodes with (`FusedSamplingWarper`)."""

import torch
from transformers import LogitsProcessor, LogitsProcessorList

# MiniMind's sampling defaults (eval_llm.py, and its generate's top_k).
TEMPERATURE, TOP_P, TOP_K = 0.85, 0.85, 50


def configure_generation(model, tokenizer) -> None:
    """Stop at `<|im_end|>`, pad with the tokenizer's pad token, sample like MiniMind: saved with the model."""
    config = model.generation_config
    config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config.pad_token_id = tokenizer.pad_token_id
    config.bos_token_id = tokenizer.bos_token_id
    config.do_sample, config.temperature, config.top_p = True, TEMPERATURE, TOP_P


class FusedSamplingWarper(LogitsProcessor):
    """Temperature, top-k and top-p in one logits processor: the scores transformers' `TemperatureLogitsWarper`,
    `TopKLogitsWarper` and `TopPLogitsWarper` return in that order (ties at the k-th score kept, as there), so
    `generate` draws the same token from the same seed. Which of several equal scores straddling the top-p cut is kept
    is unspecified in both (an unstable sort).

    Faster at batch 1 on a CPU, where these steps cost as much as a decode step's smaller matmuls: top-p works on the
    top-k survivors, which `torch.topk` returns sorted, instead of sorting the whole vocabulary, and `generate`
    inspects one processor's signature per token instead of three. Measured by bench/bench_generate.py."""

    def __init__(self, temperature: float = TEMPERATURE, top_k: int | None = TOP_K, top_p: float = TOP_P):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0 (got {temperature})")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (got {top_p})")
        if top_k is not None and top_k < 0:
            raise ValueError(f"top_k must be ≥ 0 (got {top_k}; 0 turns top-k off)")
        self.temperature, self.top_k, self.top_p = temperature, top_k or None, top_p

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores / self.temperature
        vocab = scores.shape[-1]
        if self.top_k is None and self.top_p == 1:
            return scores
        values, indices = scores.topk(min(self.top_k or vocab, vocab))
        kth = values[..., -1:]
        ties = int((scores >= kth).sum(-1).max())  # scores equal to the k-th survive top-k too
        if ties > values.shape[-1]:
            values, indices = scores.topk(ties)
        values = values.masked_fill(values < kth, -float("inf"))  # rows with fewer ties than the widest row
        if self.top_p < 1:
            ascending = values.flip(-1)  # the order TopPLogitsWarper sorts in (its other tokens have probability 0)
            remove = ascending.softmax(-1).cumsum(-1) <= 1 - self.top_p
            remove[..., -1:] = False  # keep at least the best token
            values = ascending.masked_fill(remove, -float("inf")).flip(-1)
        return torch.full_like(scores, -float("inf")).scatter_(-1, indices, values)


def sampling_arguments(temperature: float = TEMPERATURE, top_k: int | None = TOP_K, top_p: float = TOP_P) -> dict:
    """`generate` keyword arguments that sample with `FusedSamplingWarper`, the model's own temperature, top-k and
    top-p warpers turned off (so they do not run twice)."""
    warper = FusedSamplingWarper(temperature, top_k, top_p)
    return {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0,
            "logits_processor": LogitsProcessorList([warper])}  # fmt: skip
