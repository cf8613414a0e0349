"""Attention "sdpa_packed" (minimind_hf.packed_attention): per-sample SDPA in packed batches, transformers' SDPA
everywhere else, chosen by the recipe for packed training and never saved."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from minimind_hf import PACKED_SDPA, MiniMindForCausalLM, packed_attention
from minimind_hf.arguments import parse_args
from minimind_hf.packed_attention import EAGER_MAX_LENGTH, packed_sdpa_attention_forward, sample_lengths
from minimind_hf.recipe_utils import load_model, load_tokenizer


def _model(config, attn_implementation):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation)
    return model.float().eval()


def test_sample_lengths_follow_transformers_packing_detection():
    assert sample_lengths(torch.arange(6)[None]) is None  # one sample: no split
    assert sample_lengths(torch.tensor([[0, 1, 2, 0, 1, 0]])) == [[3, 2, 1]]
    # Two packed rows (TRL's bfd packing): lengths per row; a restart at any position, not only 0, starts a sample.
    assert sample_lengths(torch.tensor([[0, 1, 0, 1, 2], [0, 1, 2, 3, 7]])) == [[2, 3], [4, 1]]


def test_packed_rows_match_each_sample_alone(tiny_config):
    """Several packed rows in one batch (TRL's padding_free / bfd layout): each sample's logits equal its own
    unpacked forward, and the packed rows' loss gradients equal transformers' block-diagonal SDPA mask's."""
    model, reference = _model(tiny_config, PACKED_SDPA), _model(tiny_config, "sdpa")
    lengths = [[5, 9, 2], [7, 9]]
    input_ids = torch.randint(10, 6000, (2, 16))
    position_ids = torch.cat([torch.cat([torch.arange(n) for n in row])[None] for row in lengths])
    with torch.no_grad():
        packed = model(input_ids=input_ids, position_ids=position_ids).logits
        for row, row_lengths in enumerate(lengths):
            start = 0
            for n in row_lengths:
                alone = model(input_ids=input_ids[row : row + 1, start : start + n]).logits
                torch.testing.assert_close(packed[row, start : start + n], alone[0], rtol=1e-4, atol=1e-5)
                start += n
    grads = []
    for m in (model, reference):
        m.zero_grad()
        m(input_ids=input_ids, position_ids=position_ids, labels=input_ids).loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("autocast", [False, True], ids=["bf16-tensors", "bf16-autocast"])
def test_half_precision_cpu_paths_agree_with_the_block_diagonal_mask(tiny_config, autocast, monkeypatch):
    """In bfloat16 on CPU (bf16 tensors, or Trainer's bf16 autocast, where rope hands over float32 query and key),
    short samples take the eager path and longer ones torch's flash kernel: outputs and gradients of a packed row
    holding both stay within bfloat16 rounding of transformers' block-diagonal SDPA in float32."""
    eager_lengths, eager = [], packed_attention.eager_attention_forward

    def eager_spy(module, query, *args, **kwargs):
        eager_lengths.append(query.shape[2])
        return eager(module, query, *args, **kwargs)

    monkeypatch.setattr(packed_attention, "eager_attention_forward", eager_spy)
    module = _model(tiny_config, PACKED_SDPA).model.layers[0].self_attn
    lengths = [3, 40, EAGER_MAX_LENGTH, EAGER_MAX_LENGTH + 17]
    total = sum(lengths)
    position_ids = torch.cat([torch.arange(n) for n in lengths])[None]
    sample, seq = (position_ids[0] == 0).cumsum(0), torch.arange(total)
    block_diagonal = (sample[:, None] == sample[None, :]) & (seq[None, :] <= seq[:, None])  # own sample, causal
    torch.manual_seed(0)
    inputs = [torch.randn(1, heads, total, 16) for heads in (4, 2, 2)]
    grad_out = torch.randn(1, total, 4, 16)

    def run(half: bool):
        dtypes = (torch.float32, torch.float32, torch.bfloat16) if autocast else (torch.bfloat16,) * 3
        q, k, v = (x.to(d if half else torch.float32).requires_grad_() for x, d in zip(inputs, dtypes, strict=True))
        with torch.autocast("cpu", torch.bfloat16, enabled=half and autocast):
            if half:
                out, _ = packed_sdpa_attention_forward(module, q, k, v, None, position_ids=position_ids)
            else:
                out, _ = sdpa_attention_forward(module, q, k, v, block_diagonal[None, None], is_causal=False)
        out.float().backward(grad_out)
        return [out.float(), *(x.grad.float() for x in (q, k, v))]

    for half, full in zip(run(True), run(False), strict=True):
        torch.testing.assert_close(half, full, rtol=0.02, atol=0.02)
    assert eager_lengths == lengths[:3]


def test_torch_compile_trains_on_batches_packed_differently(tiny_config):
    """Under torch.compile (Trainer's torch_compile) and bf16 autocast, batches whose samples differ in number and
    length train as the uncompiled model does, without recompiling per batch (the per-sample attention runs
    eagerly; compiled, torch 2.13's inductor failed on the second batch's dynamic shapes)."""
    model = _model(tiny_config, PACKED_SDPA).train()
    torch.compiler.reset()
    compiled = torch.compile(model)
    try:
        for step, lengths in enumerate(([30, 50, 20], [31, 45, 27, 9], [12, 70, 33], [40, 41, 42, 43, 44, 6])):
            # step 0 compiles for static shapes, step 1 for dynamic ones; later batches must reuse those graphs
            torch.compiler.set_stance("fail_on_recompile" if step >= 2 else "default")
            input_ids = torch.randint(10, 6000, (1, sum(lengths)))
            position_ids = torch.cat([torch.arange(n) for n in lengths])[None]
            losses = []
            for m in (model, compiled):
                with torch.autocast("cpu", torch.bfloat16):
                    losses.append(m(input_ids=input_ids, position_ids=position_ids, labels=input_ids).loss)
                losses[-1].backward()
            torch.testing.assert_close(losses[1], losses[0], rtol=1e-3, atol=1e-3)
    finally:
        torch.compiler.set_stance("default")  # a failure must not leave later tests failing on every recompile


def test_generation_is_unchanged(tiny_config):
    """Outside packed batches it is transformers' SDPA: greedy generation, a left-padded batch included, gives the
    same tokens (and prefill logits) as "sdpa"."""
    prompts = torch.randint(10, 6000, (2, 12))
    mask = torch.ones_like(prompts)
    mask[1, :5] = 0  # the second prompt is left-padded
    outputs = {}
    for attn in (PACKED_SDPA, "sdpa"):
        model = _model(tiny_config, attn)
        with torch.no_grad():
            outputs[attn] = (
                model.generate(prompts, attention_mask=mask, max_new_tokens=8, do_sample=False),
                model.generate(prompts[:1], max_new_tokens=8, do_sample=False),
                model(input_ids=prompts, attention_mask=mask).logits,
            )
    assert torch.equal(outputs[PACKED_SDPA][0], outputs["sdpa"][0])
    assert torch.equal(outputs[PACKED_SDPA][1], outputs["sdpa"][1])
    torch.testing.assert_close(outputs[PACKED_SDPA][2], outputs["sdpa"][2])


def test_recipe_picks_it_for_packing_and_does_not_save_it(tmp_path):
    def loaded(*extra):
        model_args, _, training_args = parse_args(
            [
                "--model_name_or_path",
                "minimind-tiny",
                "--dataset_name",
                "d.jsonl",
                "--output_dir",
                str(tmp_path),
                *extra,
            ]
        )
        tokenizer = load_tokenizer(model_args)
        return load_model(model_args, tokenizer, packing=training_args.packing)

    assert loaded().config._attn_implementation == "sdpa"
    assert loaded("--attn_implementation", "eager", "--packing", "true").config._attn_implementation == "eager"
    model = loaded("--packing", "true")
    assert model.config._attn_implementation == PACKED_SDPA
    model.save_pretrained(tmp_path / "saved")
    assert PACKED_SDPA not in (tmp_path / "saved" / "config.json").read_text()
    assert "attn_implementation" not in json.loads((tmp_path / "saved" / "config.json").read_text())
    reloaded = MiniMindForCausalLM.from_pretrained(tmp_path / "saved")
    assert reloaded.config._attn_implementation == "sdpa"
