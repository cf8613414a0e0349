"""Collation: right padding (no mask needed: its loss and gradients equal the masked batch's), and padding-free
packing whose loss and gradients equal the padded batch's, under each attention (sdpa_packed included)."""

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM, TrainerState, TrainingArguments

from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.callbacks import SFTMetricsCallback
from minimind_hf.collator import build_collator
from minimind_hf.data import tokenize_conversation

REPO = Path(__file__).resolve().parents[1]
IGNORE_INDEX = -100

FEATURES = [
    {"input_ids": [5, 6, 7], "labels": [IGNORE_INDEX, 6, 7], "length": 3},
    {"input_ids": [8, 9, 10, 11, 12], "labels": [IGNORE_INDEX, IGNORE_INDEX, 10, 11, IGNORE_INDEX], "length": 5},
]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(REPO / "minimind_hf" / "tokenizer")


def test_padding_is_right_sided_without_a_mask(tokenizer):
    tokenizer.padding_side = "left"  # inference code often sets this; training batches stay right-padded
    batch = build_collator(tokenizer)(FEATURES)
    pad = tokenizer.pad_token_id
    assert batch["input_ids"].tolist() == [[5, 6, 7, pad, pad], [8, 9, 10, 11, 12]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 6, 7, IGNORE_INDEX, IGNORE_INDEX], FEATURES[1]["labels"]]
    assert set(batch) == {"input_ids", "labels"}  # the causal kernel needs no mask for right padding
    assert all(t.dtype == torch.long for t in batch.values())
    wide = build_collator(tokenizer, pad_to_multiple_of=8)(FEATURES)
    assert wide["input_ids"].shape == (2, 8) and (wide["labels"][:, 5:] == IGNORE_INDEX).all()
    assert (wide["input_ids"][:, 5:] == pad).all()


def test_padding_with_eos_keeps_the_mask(tokenizer):
    """Without a pad token the collator pads with eos, which real samples also contain: the mask tells them apart."""
    no_pad = AutoTokenizer.from_pretrained(REPO / "minimind_hf" / "tokenizer")
    no_pad.pad_token = None
    features = [{"input_ids": [5, no_pad.eos_token_id], "labels": [IGNORE_INDEX, no_pad.eos_token_id]}, FEATURES[1]]
    batch = build_collator(no_pad)(features)
    assert batch["input_ids"][0].tolist() == [5] + [no_pad.eos_token_id] * 4
    assert batch["attention_mask"].tolist() == [[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]


def test_metrics_count_real_tokens_of_maskless_batches(tokenizer, tmp_path):
    """`tokens_per_second` counts the samples' own tokens, not the padding the collator added."""
    collator = build_collator(tokenizer, pad_to_multiple_of=8)
    callback, model = SFTMetricsCallback(collator.pad_token_id), _minimind("sdpa").train()
    args, state = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none"), TrainerState()
    callback.on_train_begin(args, state, None, model=model)
    model(**collator(FEATURES))
    logs = {"loss": 1.0}
    callback.on_log(args, state, None, logs=logs)
    callback.on_train_end(args, state, None)
    assert logs["num_tokens"] == 3 + 5  # of 16 positions
    supervised, real = logs["supervised_tokens_per_second"], logs["tokens_per_second"]
    assert supervised / real == pytest.approx(4 / 8, rel=1e-3)  # both rounded to 0.1 tokens/s


def test_packing_restarts_positions_and_blocks_cross_sample_labels(tokenizer):
    batch = build_collator(tokenizer, packing=True)(FEATURES)
    assert set(batch) == {"input_ids", "labels", "position_ids"}  # no attention_mask
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, 10, 11, 12]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 2, 3, 4]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 6, 7, IGNORE_INDEX, IGNORE_INDEX, 10, 11, IGNORE_INDEX]]
    # A supervised first token of a later sample must not be predicted from the previous sample's last token.
    first_supervised = [{"input_ids": [1, 2], "labels": [1, 2]}, {"input_ids": [3, 4], "labels": [3, 4]}]
    assert build_collator(tokenizer, packing=True)(first_supervised)["labels"].tolist() == [[-100, 2, -100, 4]]
    padded = build_collator(tokenizer, packing=True, pad_to_multiple_of=16)(FEATURES)
    assert padded["input_ids"].shape == (1, 16)
    assert padded["position_ids"][0, 8:].tolist() == list(range(8))  # the padding is a sample of its own
    assert (padded["labels"][0, 8:] == IGNORE_INDEX).all()


def _samples(tokenizer):
    conversations = [
        [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！我是 MiniMind。"}],
        [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4", "reasoning_content": "two and two"},
            {"role": "user", "content": "and 3+3?"},
            {"role": "assistant", "content": "6"},
        ],
        [{"role": "user", "content": "Say something long."}, {"role": "assistant", "content": "好的，" * 20}],
    ]
    options = {"system_prompt_ratio": 0.0, "empty_think_ratio": 1.0}
    return [tokenize_conversation(c, tokenizer, **options) for c in conversations]


def _qwen3(attn_implementation):
    config = Qwen3Config(
        vocab_size=6400,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=512,
    )
    config._attn_implementation = attn_implementation
    return Qwen3ForCausalLM(config)


def _minimind(attn_implementation):
    config = MiniMindConfig(
        vocab_size=6400,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
    )
    config._attn_implementation = attn_implementation
    return MiniMindForCausalLM(config)


def _loss_and_grads(model, batch):
    model.zero_grad()
    loss = model(**batch, use_cache=False).loss
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("make_model", [_minimind, _qwen3], ids=["minimind", "qwen3"])
@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager", "sdpa_packed"])
def test_right_padding_needs_no_mask(tokenizer, make_model, attn_implementation):
    """The maskless padded batch trains exactly as the same batch with its padding masked out."""
    torch.manual_seed(0)
    model = make_model(attn_implementation).float().eval()
    batch = build_collator(tokenizer, pad_to_multiple_of=64)(_samples(tokenizer))
    assert "attention_mask" not in batch and (batch["input_ids"] == tokenizer.pad_token_id).float().mean() > 0.3
    loss, grads = _loss_and_grads(model, batch)
    lengths = torch.tensor([len(sample["input_ids"]) for sample in _samples(tokenizer)])
    mask = (torch.arange(batch["input_ids"].shape[1])[None] < lengths[:, None]).long()
    masked_loss, masked_grads = _loss_and_grads(model, {**batch, "attention_mask": mask})
    torch.testing.assert_close(loss, masked_loss, rtol=1e-5, atol=1e-6)
    assert grads.keys() == masked_grads.keys() and len(grads) > 5
    for name, grad in masked_grads.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    # Control: the logits at the padding do change, so the mask really was dropped (and would matter there).
    with torch.no_grad():
        free, masked = model(**batch).logits, model(**batch, attention_mask=mask).logits
    real = mask.bool()
    torch.testing.assert_close(free[real], masked[real], rtol=1e-4, atol=1e-5)
    assert (free[~real] - masked[~real]).abs().max() > 1e-4


@pytest.mark.parametrize("make_model", [_minimind, _qwen3], ids=["minimind", "qwen3"])
@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager", "sdpa_packed"])
def test_packed_loss_and_grads_equal_padded(tokenizer, make_model, attn_implementation):
    torch.manual_seed(0)
    model = make_model(attn_implementation).float().eval()  # eval: no dropout, same math for both layouts
    samples = _samples(tokenizer)
    padded_loss, padded_grads = _loss_and_grads(model, build_collator(tokenizer)(samples))
    packed_loss, packed_grads = _loss_and_grads(model, build_collator(tokenizer, packing=True)(samples))
    assert padded_loss.item() > 0
    torch.testing.assert_close(packed_loss, padded_loss, rtol=1e-5, atol=1e-6)
    assert packed_grads.keys() == padded_grads.keys() and len(packed_grads) > 5
    for name, grad in padded_grads.items():
        torch.testing.assert_close(packed_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    # Control: with positions that do not restart, the samples see each other and later logits change.
    packed = build_collator(tokenizer, packing=True)(samples)
    with torch.no_grad():
        separate = model(**packed, use_cache=False).logits
        packed["position_ids"] = torch.arange(packed["input_ids"].shape[1])[None]
        mixed = model(**packed, use_cache=False).logits
    first = len(samples[0]["input_ids"])
    torch.testing.assert_close(mixed[:, :first], separate[:, :first])
    assert (mixed[:, first:] - separate[:, first:]).abs().max() > 1e-4
