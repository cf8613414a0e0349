"""minimind_hf.generation's `FusedSamplingWarper`: the tokens transformers' own temperature / top-k / top-p warpers
keep, so `generate` samples alike from one seed."""

import pytest
import torch
from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.generation import FusedSamplingWarper, sampling_arguments

SETTINGS = [(0.85, 50, 0.85), (1.3, None, 0.9), (0.7, 5, 1.0), (1.0, 3000, 0.5), (0.5, None, 1.0)]


def transformers_warpers(temperature, top_k, top_p):
    warpers = [TemperatureLogitsWarper(temperature)] if temperature != 1.0 else []
    warpers += [TopKLogitsWarper(top_k)] if top_k else []
    warpers += [TopPLogitsWarper(top_p)] if top_p < 1 else []
    return LogitsProcessorList(warpers)


def random_logits(seed, rows=3, vocab=6400):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(rows, vocab, generator=generator) * (1 + seed % 4)


@pytest.mark.parametrize("setting", SETTINGS)
def test_the_same_scores_as_transformers_warpers(setting):
    input_ids = torch.zeros((3, 1), dtype=torch.long)
    for seed in range(20):
        scores = random_logits(seed)
        expected = transformers_warpers(*setting)(input_ids, scores.clone())
        assert torch.equal(FusedSamplingWarper(*setting)(input_ids, scores.clone()), expected), seed


@pytest.mark.parametrize("setting", SETTINGS)
def test_bf16_logits_keep_ties_at_the_kth_score_and_the_same_kept_scores(setting):
    """bf16 logits (a bf16 model's) hold many equal scores: top-k keeps all that equal the k-th, as transformers does;
    at the top-p cut either tool may keep a different one of equal scores, so the kept scores are compared sorted."""
    input_ids = torch.zeros((3, 1), dtype=torch.long)
    for seed in range(20):
        scores = random_logits(seed).bfloat16().float()
        expected = transformers_warpers(*setting)(input_ids, scores.clone())
        fused = FusedSamplingWarper(*setting)(input_ids, scores.clone())
        assert torch.equal(fused.sort(-1).values, expected.sort(-1).values), seed
    scores = torch.tensor([[3.0, 2.0, 2.0, 2.0, 1.0, 0.0], [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    kept = FusedSamplingWarper(1.0, 2, 1.0)(input_ids[:2], scores) > -float("inf")
    assert kept.tolist() == [[True, True, True, True, False, False], [True, True, False, False, False, False]]


def test_generate_samples_the_same_tokens_as_with_its_own_warpers():
    torch.manual_seed(0)
    config = MiniMindConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                            intermediate_size=128, vocab_size=512)  # fmt: skip
    model = MiniMindForCausalLM(config).eval()
    model.generation_config.pad_token_id = 0
    prompt = torch.randint(3, 512, (2, 7))
    for temperature, top_k, top_p in SETTINGS:
        outputs = []
        for arguments in (
            {"do_sample": True, "temperature": temperature, "top_k": top_k or 0, "top_p": top_p},
            sampling_arguments(temperature, top_k, top_p),
        ):
            torch.manual_seed(1)
            outputs.append(model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=12,
                                          eos_token_id=None, **arguments))  # fmt: skip
        assert torch.equal(*outputs), (temperature, top_k, top_p)


@pytest.mark.parametrize(
    "arguments, named", [((0.0, 50, 0.85), "temperature"), ((0.85, 50, 0.0), "top_p"), ((0.85, -1, 0.85), "top_k")]
)
def test_bad_values_are_refused_by_name(arguments, named):
    with pytest.raises(ValueError, match=named):
        FusedSamplingWarper(*arguments)
