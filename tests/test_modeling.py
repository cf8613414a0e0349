import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import transformers
from datasets import Dataset
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
    Trainer,
    TrainingArguments,
)

from minimind_hf import MiniMindConfig, MiniMindForCausalLM, MiniMindModel
from minimind_hf.configuration_minimind import MINIMIND_PRESETS
from minimind_hf.modeling_minimind import MiniMindSparseMoeBlock, load_balancing_loss_func

VOCAB = 128
ATTN = ["eager", "sdpa"]


def small_config(**overrides) -> MiniMindConfig:
    kwargs = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=256,
    )
    return MiniMindConfig(**{**kwargs, **overrides})


def randomized(model: torch.nn.Module, seed: int = 0, std: float = 0.1) -> torch.nn.Module:
    """Random weights everywhere, norms included (ones would hide a norm weight that is never applied)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                param.copy_(1 + 0.2 * torch.randn(param.shape, generator=gen))
            else:
                param.copy_(std * torch.randn(param.shape, generator=gen))
    return model.eval()


def build(config: MiniMindConfig, seed: int = 0, std: float = 0.1) -> MiniMindForCausalLM:
    torch.manual_seed(seed)
    return randomized(MiniMindForCausalLM(config), seed, std)


# --------------------------------------------------------------------------- presets and parameter counts

# Released sizes (table in the "Foundation" issue), tied embedding counted once. Exact values follow from the
# architecture: e.g. minimind-3 = 6400·768 + 8·(768·2304 + 2·96 + 3·768·2432 + 2·768) + 768.
EXPECTED_PARAMS = {
    "minimind2-small": (25_829_888, "25.8M"),
    "minimind2": (104_030_976, "104M"),
    "minimind2-moe": (145_029_760, "145M"),
    "minimind-3": (63_912_192, "63.9M"),
    "minimind-3-moe": (198_416_640, "198M"),
}


def as_table(n: int, label: str) -> str:
    return f"{n / 1e6:.1f}M" if "." in label else f"{round(n / 1e6)}M"


@pytest.mark.parametrize("name", sorted(MINIMIND_PRESETS))
def test_preset_builds_with_expected_parameter_count(name):
    config = MiniMindConfig.from_preset(name)
    with torch.device("meta"):
        model = MiniMindForCausalLM(config)
    total = sum(p.numel() for p in model.parameters())  # parameters() yields the tied weight once
    assert model.lm_head.weight is model.model.embed_tokens.weight
    if name == "minimind-tiny":
        assert total < 2_000_000
        return
    exact, label = EXPECTED_PARAMS[name]
    assert total == exact and as_table(total, label) == label
    if name == "minimind-3-moe":
        expert = sum(p.numel() for p in model.model.layers[0].mlp.experts[0].parameters())
        idle = (config.num_experts - config.num_experts_per_tok) * expert * config.num_hidden_layers
        assert round((total - idle) / 1e6) == 64


# --------------------------------------------------------------------------- equivalence with transformers models


def reference_model(model: MiniMindForCausalLM, attn: str):
    c = model.config
    common = dict(
        vocab_size=c.vocab_size,
        hidden_size=c.hidden_size,
        intermediate_size=c.intermediate_size,
        num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads,
        num_key_value_heads=c.num_key_value_heads,
        head_dim=c.head_dim,
        rms_norm_eps=c.rms_norm_eps,
        max_position_embeddings=c.max_position_embeddings,
        rope_parameters=dict(c.rope_parameters),
        tie_word_embeddings=True,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        attn_implementation=attn,
    )
    ref = Qwen3ForCausalLM(Qwen3Config(**common)) if c.qk_norm else LlamaForCausalLM(LlamaConfig(**common))
    ref.load_state_dict(model.state_dict(), strict=True)
    return ref.eval()


@pytest.mark.parametrize("attn", ATTN)
@pytest.mark.parametrize("qk_norm", [True, False], ids=["qwen3", "llama"])
@pytest.mark.parametrize("padding", [None, "left", "right"])
def test_logits_match_transformers_reference(attn, qk_norm, padding):
    model = build(small_config(qk_norm=qk_norm, attn_implementation=attn))
    ref = reference_model(model, attn)
    assert ref.config._attn_implementation == model.config._attn_implementation == attn
    input_ids = torch.randint(3, VOCAB, (3, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(input_ids)
    if padding == "left":
        mask[0, :5], mask[1, :2] = 0, 0
    elif padding == "right":
        mask[0, 7:], mask[1, 10:] = 0, 0
    kwargs = {} if padding is None else {"attention_mask": mask}
    with torch.no_grad():
        ours, theirs = model(input_ids, **kwargs).logits, ref(input_ids, **kwargs).logits
    keep = mask.bool()
    assert (ours[keep] - theirs[keep]).abs().max() <= 1e-5
    assert ours.abs().max() > 0.1  # random weights give non-trivial logits


# --------------------------------------------------------------------------- generation


@pytest.fixture
def gen_model():
    model = build(small_config(), std=0.15)
    model.generation_config.eos_token_id = None  # run to max_new_tokens so batch and single outputs align
    return model


@pytest.mark.parametrize("moe", [False, True], ids=["dense", "moe"])
def test_greedy_generation_same_with_and_without_cache(gen_model, moe):
    model = gen_model if not moe else build(small_config(use_moe=True, moe_intermediate_size=32), std=0.15)
    prompt = torch.randint(3, VOCAB, (2, 6), generator=torch.Generator().manual_seed(2))
    cached = model.generate(prompt, max_new_tokens=12, min_new_tokens=12, do_sample=False, use_cache=True)
    uncached = model.generate(prompt, max_new_tokens=12, min_new_tokens=12, do_sample=False, use_cache=False)
    assert cached.shape == (2, 18)
    assert torch.equal(cached, uncached)


def test_beam_search_and_seeded_sampling_run(gen_model):
    prompt = torch.randint(3, VOCAB, (2, 5), generator=torch.Generator().manual_seed(3))
    beams = gen_model.generate(prompt, max_new_tokens=6, num_beams=3, num_return_sequences=2, do_sample=False)
    assert beams.shape == (4, 11) and torch.equal(beams[:, :5], prompt.repeat_interleave(2, 0))
    samples = []
    for _ in range(2):
        torch.manual_seed(0)
        samples.append(gen_model.generate(prompt, max_new_tokens=8, do_sample=True, top_k=20, temperature=1.5))
    assert torch.equal(samples[0], samples[1]) and samples[0].shape == (2, 13)


@pytest.mark.parametrize("attn", ATTN)
def test_batched_left_padded_generation_matches_single_prompts(gen_model, attn):
    gen_model.set_attn_implementation(attn)
    gen = torch.Generator().manual_seed(4)
    prompts = [torch.randint(3, VOCAB, (n,), generator=gen) for n in (3, 7, 5)]
    width = max(len(p) for p in prompts)
    input_ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for i, p in enumerate(prompts):
        input_ids[i, width - len(p) :], mask[i, width - len(p) :] = p, 1
    batched = gen_model.generate(input_ids, attention_mask=mask, max_new_tokens=10, do_sample=False)
    for i, p in enumerate(prompts):
        single = gen_model.generate(p[None], max_new_tokens=10, do_sample=False)
        assert torch.equal(batched[i, width:], single[0, len(p) :])


# --------------------------------------------------------------------------- loss


def test_loss_equals_manual_shifted_cross_entropy():
    model = build(small_config())
    input_ids = torch.randint(3, VOCAB, (2, 9), generator=torch.Generator().manual_seed(5))
    labels = input_ids.clone()
    labels[0, :4], labels[1, 6:] = -100, -100
    out = model(input_ids, labels=labels)
    manual = F.cross_entropy(out.logits[:, :-1].reshape(-1, VOCAB), labels[:, 1:].reshape(-1), ignore_index=-100)
    assert torch.allclose(out.loss, manual, atol=1e-6)
    assert out.aux_loss is None  # dense model


def test_logits_to_keep_and_hidden_states():
    model = build(small_config())
    input_ids = torch.randint(3, VOCAB, (2, 9))
    with torch.no_grad():
        full = model(input_ids, output_hidden_states=True)
        last = model(input_ids, logits_to_keep=1).logits
    assert last.shape == (2, 1, VOCAB) and torch.allclose(last, full.logits[:, -1:], atol=1e-6)
    assert len(full.hidden_states) == model.config.num_hidden_layers + 1
    assert torch.allclose(model.lm_head(full.hidden_states[-1]), full.logits, atol=1e-6)
    base = AutoModel.from_config(model.config)
    assert type(base) is MiniMindModel and base(input_ids).last_hidden_state.shape == (2, 9, 64)


@pytest.mark.parametrize("aux_loss_type", ["batch", "sequence"])
def test_moe_loss_adds_weighted_aux_loss(aux_loss_type):
    config = small_config(
        use_moe=True, moe_intermediate_size=32, aux_loss_type=aux_loss_type, router_aux_loss_coef=0.1
    )
    model = build(config)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.mlp.gate.weight.zero_()  # uniform router: Σ_e load_e·P_e·E = 1 whatever the tie-break
    input_ids = torch.randint(3, VOCAB, (2, 9))
    model.train()
    out = model(input_ids, labels=input_ids, skip_logits=False)
    ce = F.cross_entropy(out.logits[:, :-1].reshape(-1, VOCAB), input_ids[:, 1:].reshape(-1))
    # aux_loss is unweighted (transformers' convention, TRL weights it itself); loss = MiniMind's loss + coef·aux
    assert torch.allclose(out.aux_loss, torch.tensor(1.0 * config.num_hidden_layers), atol=1e-6)
    assert torch.allclose(out.loss, ce + 0.1 * out.aux_loss, atol=1e-6)
    assert len(out.router_logits) == config.num_hidden_layers and out.router_logits[0].shape == (18, 4)
    out.loss.backward()
    assert model.model.layers[0].mlp.gate.weight.grad.abs().sum() > 0  # top-1 + renorm: router learns via aux only
    model.eval()
    with torch.no_grad():
        out = model(input_ids, labels=input_ids)
        assert out.aux_loss is None and torch.allclose(out.loss, ce, atol=1e-5)  # MiniMind: aux loss in training
        out = model(input_ids, labels=input_ids, output_router_logits=True)  # transformers: asked for, it counts
        assert torch.allclose(out.loss, ce + 0.1 * out.aux_loss, atol=1e-5) and out.aux_loss > 0


@pytest.mark.parametrize(
    "top_k, shared, aux_loss_type, expected_aux",
    [
        (1, 0, "batch", 4 * 3 / 7),  # all tokens pick expert 0 (p=3/7): E·(1·3/7)
        (2, 0, "batch", 4 * 5 / 7),  # minimind-3 counts both slots: E·(1·3/7 + 1·2/7)
        (2, 1, "sequence", 2 * 5 / 7),  # MiniMind2: load = count·E/(L·k) = 2 for experts 0, 1
    ],
)
def test_moe_block_hand_checked(top_k, shared, aux_loss_type, expected_aux):
    config = small_config(
        hidden_size=8,
        num_attention_heads=2,
        num_key_value_heads=1,
        use_moe=True,
        moe_intermediate_size=16,
        num_experts_per_tok=top_k,
        n_shared_experts=shared,
        aux_loss_type=aux_loss_type,
    )
    block = randomized(MiniMindSparseMoeBlock(config)).train()
    logits = torch.tensor([math.log(3), math.log(2), 0.0, 0.0])  # router probs 3/7, 2/7, 1/7, 1/7
    with torch.no_grad():
        block.gate.weight.copy_((logits / 8)[:, None].expand(4, 8))
    x = torch.ones(2, 3, 8)  # gate(x) = logits for every token
    out, router_logits = block(x)
    torch.testing.assert_close(router_logits, logits.expand(6, 4))
    aux = load_balancing_loss_func((router_logits,), 4, top_k, aux_loss_type, torch.ones(2, 3))
    assert torch.allclose(aux, torch.tensor(expected_aux), atol=1e-6)
    token = x[0, 0]
    expected = block.experts[0](token) if top_k == 1 else 0.6 * block.experts[0](token) + 0.4 * block.experts[1](token)
    if shared:
        expected = expected + block.shared_experts[0](token)
    assert torch.allclose(out, expected.expand_as(out), atol=1e-6)


def test_idle_experts_still_get_gradients():
    # DDP with find_unused_parameters=False (the project's setting) fails when an expert receives no token.
    model = build(small_config(use_moe=True, moe_intermediate_size=32)).train()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.mlp.gate.weight.zero_()
            layer.mlp.gate.weight[2] = 1.0  # the same token everywhere then goes to one expert only
    input_ids = torch.full((1, 6), 7)
    model(input_ids, labels=input_ids).loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert sum(p.grad.abs().sum() == 0 for p in model.model.layers[0].mlp.experts.parameters()) >= 3 * 3


def test_moe_aux_loss_counted_once_per_optimizer_step():
    # Under Trainer, CE of each micro-batch is a sum over num_items_in_batch (all micro-batches of the step);
    # the aux loss enters with this micro-batch's share of those tokens instead of once per micro-batch.
    model = build(small_config(use_moe=True, moe_intermediate_size=32, router_aux_loss_coef=0.1)).train()
    input_ids = torch.randint(3, VOCAB, (2, 9), generator=torch.Generator().manual_seed(12))
    labels = input_ids.clone()
    labels[0, :5] = -100  # 4 + 8 = 12 shifted targets
    out = model(input_ids, labels=labels, num_items_in_batch=torch.tensor(48), skip_logits=False)
    flat_logits, flat_targets = out.logits[:, :-1].reshape(-1, VOCAB), labels[:, 1:].reshape(-1)
    ce_sum = F.cross_entropy(flat_logits, flat_targets, ignore_index=-100, reduction="sum")
    assert out.aux_loss > 0
    assert torch.allclose(out.loss, ce_sum / 48 + 0.1 * out.aux_loss * 12 / 48, atol=1e-6)
    out = model(input_ids, labels=labels, num_items_in_batch=torch.tensor(12))  # no accumulation: plain sum
    assert torch.allclose(out.loss, ce_sum / 12 + 0.1 * out.aux_loss, atol=1e-6)


@pytest.mark.parametrize("use_moe", [False, True], ids=["dense", "moe"])
def test_skip_logits_trains_as_the_full_lm_head(use_moe):
    """Training with labels projects only the supervised positions through the LM head: same loss, same gradients."""
    config = small_config(use_moe=use_moe, moe_intermediate_size=32, router_aux_loss_coef=0.1)
    model = build(config).train()
    input_ids = torch.randint(3, VOCAB, (3, 12), generator=torch.Generator().manual_seed(3))
    labels = input_ids.clone()
    labels[:, :4] = -100  # the prompt
    labels[1, 9:] = -100  # padding
    shift_labels = F.pad(labels, (0, 1), value=-100)[:, 1:].contiguous()

    def loss_and_grads(**kwargs):
        model.zero_grad()
        out = model(input_ids, **kwargs)
        out.loss.backward()
        return out, {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    for kwargs in ({"labels": labels}, {"labels": labels, "num_items_in_batch": torch.tensor(40)},
                   {"labels": labels, "shift_labels": shift_labels}):  # fmt: skip
        full, full_grads = loss_and_grads(**kwargs, skip_logits=False)
        skipped, grads = loss_and_grads(**kwargs)
        assert skipped.logits is None and full.logits.shape == (3, 12, VOCAB)
        torch.testing.assert_close(skipped.loss, full.loss, rtol=1e-6, atol=1e-6)
        assert grads.keys() == full_grads.keys() and len(grads) > 5
        for name, grad in full_grads.items():
            torch.testing.assert_close(grads[name], grad, rtol=1e-5, atol=1e-7, msg=name)
    assert model(input_ids).logits.shape == (3, 12, VOCAB)  # no labels: logits as usual
    model.eval()
    with torch.no_grad():
        assert model(input_ids, labels=labels).logits.shape == (3, 12, VOCAB)  # eval: logits for metrics
    with pytest.raises(ValueError, match="needs labels"):
        model(input_ids, skip_logits=True)


# --------------------------------------------------------------------------- training-time behaviour


def test_gradient_accumulation_invariance_under_trainer(tmp_path):
    gen = torch.Generator().manual_seed(6)
    rows = []
    for n_supervised in (1, 3, 6, 10):  # uneven token counts: a mean of per-batch means would differ
        input_ids = torch.randint(3, VOCAB, (12,), generator=gen)
        labels = torch.full((12,), -100)
        labels[12 - n_supervised :] = input_ids[12 - n_supervised :]
        rows.append({"input_ids": input_ids.tolist(), "labels": labels.tolist(), "attention_mask": [1] * 12})
    dataset = Dataset.from_list(rows)

    def one_step(batch_size, accumulation):
        model = build(small_config(), seed=7).train()
        args = TrainingArguments(
            output_dir=str(tmp_path / f"b{batch_size}"),
            per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=accumulation,
            max_steps=1,
            learning_rate=1.0,
            optim="sgd",
            lr_scheduler_type="constant",
            weight_decay=0.0,
            max_grad_norm=0.0,
            use_cpu=True,
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            seed=0,
            dataloader_num_workers=0,
        )
        Trainer(model=model, args=args, train_dataset=dataset).train()
        return {k: v.detach().clone() for k, v in model.named_parameters()}

    full, accumulated = one_step(4, 1), one_step(1, 4)
    start = dict(build(small_config(), seed=7).named_parameters())
    assert any((full[k] - start[k]).abs().max() > 1e-3 for k in full)  # the step did move the weights
    for k in full:
        torch.testing.assert_close(accumulated[k], full[k], atol=2e-6, rtol=1e-5)

    # Sensitivity: the unweighted mean of per-sample losses gives a visibly different step.
    model = build(small_config(), seed=7).train()
    naive = sum(model(torch.tensor([r["input_ids"]]), labels=torch.tensor([r["labels"]])).loss for r in rows) / 4
    naive.backward()
    k = "model.layers.0.mlp.down_proj.weight"
    naive_step = start[k] - dict(model.named_parameters())[k].grad
    assert (naive_step - full[k]).abs().max() > 1e-4


@pytest.mark.parametrize("attn", ATTN)
@pytest.mark.parametrize("train", [False, True])
def test_packed_sequences_match_separate_samples(attn, train):
    model = build(small_config(attn_implementation=attn)).train(train)
    gen = torch.Generator().manual_seed(8)
    samples = [torch.randint(3, VOCAB, (n,), generator=gen) for n in (5, 3, 6)]
    packed = torch.cat(samples)[None]
    position_ids = torch.cat([torch.arange(len(s)) for s in samples])[None]
    with torch.no_grad():
        packed_logits = model(packed, position_ids=position_ids).logits[0]
        separate = torch.cat([model(s[None]).logits[0] for s in samples])
    assert (packed_logits - separate).abs().max() <= 1e-5


@pytest.mark.parametrize("reentrant", [False, True], ids=["non-reentrant", "reentrant"])
@pytest.mark.parametrize("moe", [False, True], ids=["dense", "moe"])
def test_gradient_checkpointing_same_gradients(moe, reentrant):
    config = small_config(use_moe=moe, moe_intermediate_size=32, router_aux_loss_coef=0.1)
    input_ids = torch.randint(3, VOCAB, (2, 10), generator=torch.Generator().manual_seed(9))
    grads = []
    for checkpointing in (False, True):
        model = build(config, seed=10).train()
        if checkpointing:
            model.activation_checkpointing_enable({"use_reentrant": reentrant})
            assert model.model.layers[0].gradient_checkpointing
        model(input_ids, labels=input_ids).loss.backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters()})
    for k in grads[0]:
        torch.testing.assert_close(grads[1][k], grads[0][k], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("moe", [False, True], ids=["dense", "moe"])
def test_bf16_close_to_fp32(moe):
    model = build(small_config(use_moe=moe, moe_intermediate_size=32))
    input_ids = torch.randint(3, VOCAB, (2, 10), generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        reference = model(input_ids).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(input_ids).logits
    assert low.dtype == torch.bfloat16
    assert (low.float() - reference).abs().max() < 0.05 * reference.abs().max()
    assert (low.float().argmax(-1) == reference.argmax(-1)).float().mean() > 0.9
    # bf16 weights (as from `from_pretrained(..., dtype=torch.bfloat16)`), including a cached generate
    model.to(torch.bfloat16)
    with torch.no_grad():
        bf16 = model(input_ids).logits
    assert bf16.dtype == torch.bfloat16
    close = (bf16.float() - reference).abs().amax(-1) < 0.1 * reference.abs().max()  # per position
    # A top-1 router near a tie may pick the other expert in bf16 (as on an AVX2-only CPU here: 1 of 20 tokens), which
    # moves that token's output by design; every other position must stay close.
    assert close.float().mean() >= 0.9 if moe else close.all()
    assert model.generate(input_ids[:, :4], max_new_tokens=3, min_new_tokens=3, do_sample=False).shape == (2, 7)


# --------------------------------------------------------------------------- RoPE / YaRN


def minimind_yarn_inv_freq(dim, base=1e6, factor=16, orig_max=2048, beta_fast=32, beta_slow=1):
    """MiniMind's own YaRN formula (f'(i) = f(i)·((1-γ) + γ/s)), written out independently of transformers."""
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
    inv_dim = lambda b: (dim * math.log(orig_max / (b * 2 * math.pi))) / (2 * math.log(base))  # noqa: E731
    low, high = max(math.floor(inv_dim(beta_fast)), 0), min(math.ceil(inv_dim(beta_slow)), dim // 2 - 1)
    ramp = torch.clamp((torch.arange(dim // 2).float() - low) / max(high - low, 0.001), 0, 1)
    return freqs * (1 - ramp + ramp / factor)


@pytest.mark.parametrize("name", ["minimind2-small", "minimind-3", "minimind-tiny"])
def test_yarn_matches_minimind_formula(name):
    config = MiniMindConfig.from_preset(name, inference_rope_scaling=True, num_hidden_layers=1)
    rotary = MiniMindForCausalLM(config).model.rotary_emb
    assert rotary.rope_type == "yarn" and rotary.attention_scaling == 1.0
    torch.testing.assert_close(rotary.inv_freq, minimind_yarn_inv_freq(config.head_dim), rtol=1e-6, atol=0)


# --------------------------------------------------------------------------- checkpoints


def minimind_state_dict(config: MiniMindConfig) -> dict[str, torch.Tensor]:
    """Keys and shapes as MiniMind's own model saves them (tied embedding under both names)."""
    h, hd, inter = config.hidden_size, config.head_dim, config.intermediate_size
    q, kv = config.num_attention_heads * hd, config.num_key_value_heads * hd
    embed = torch.randn(config.vocab_size, h)
    sd = {"model.embed_tokens.weight": embed, "lm_head.weight": embed, "model.norm.weight": torch.randn(h)}

    def mlp(prefix, n):
        return {
            f"{prefix}.{name}_proj.weight": torch.randn(*shape)
            for name, shape in (("gate", (n, h)), ("up", (n, h)), ("down", (h, n)))
        }

    for i in range(config.num_hidden_layers):
        p = f"model.layers.{i}"
        sd.update(
            {
                f"{p}.self_attn.q_proj.weight": torch.randn(q, h),
                f"{p}.self_attn.k_proj.weight": torch.randn(kv, h),
                f"{p}.self_attn.v_proj.weight": torch.randn(kv, h),
                f"{p}.self_attn.o_proj.weight": torch.randn(h, q),
                f"{p}.input_layernorm.weight": torch.randn(h),
                f"{p}.post_attention_layernorm.weight": torch.randn(h),
            }
        )
        if config.qk_norm:
            sd.update(
                {f"{p}.self_attn.q_norm.weight": torch.randn(hd), f"{p}.self_attn.k_norm.weight": torch.randn(hd)}
            )
        if config.use_moe:
            sd[f"{p}.mlp.gate.weight"] = torch.randn(config.num_experts, h)
            for e in range(config.num_experts):
                sd.update(mlp(f"{p}.mlp.experts.{e}", config.moe_intermediate_size))
            for e in range(config.n_shared_experts):
                sd.update(mlp(f"{p}.mlp.shared_experts.{e}", config.moe_intermediate_size))
        else:
            sd.update(mlp(f"{p}.mlp", inter))
    return sd


@pytest.mark.parametrize("preset", ["minimind2-small", "minimind-3", "minimind2-moe", "minimind-3-moe"])
def test_minimind_state_dict_loads_strict(preset):
    config = MiniMindConfig.from_preset(
        preset, vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, intermediate_size=96, moe_intermediate_size=48
    )
    model = MiniMindForCausalLM(config)
    sd = minimind_state_dict(config)
    assert set(model.state_dict()) == set(sd)  # same names, and no persistent buffers
    model.load_state_dict(sd, strict=True)
    assert torch.equal(model.model.layers[1].self_attn.o_proj.weight, sd["model.layers.1.self_attn.o_proj.weight"])
    assert torch.equal(model.lm_head.weight, sd["model.embed_tokens.weight"])
    assert model.lm_head.weight is model.model.embed_tokens.weight


@pytest.mark.parametrize("moe", [False, True], ids=["dense", "moe"])
def test_save_and_auto_load_round_trip(tmp_path, moe):
    config = small_config(use_moe=moe, moe_intermediate_size=32, inference_rope_scaling=moe)
    model = build(config)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "minimind"
    assert saved["auto_map"] == {
        "AutoConfig": "configuration_minimind.MiniMindConfig",
        "AutoModel": "modeling_minimind.MiniMindModel",
        "AutoModelForCausalLM": "modeling_minimind.MiniMindForCausalLM",
    }
    assert (tmp_path / "configuration_minimind.py").is_file() and (tmp_path / "modeling_minimind.py").is_file()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert type(loaded) is MiniMindForCausalLM
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    input_ids = torch.randint(3, VOCAB, (2, 10))
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids).logits, model(input_ids).logits, atol=1e-6, rtol=0)


REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import importlib.util, sys, torch
    from transformers import AutoModelForCausalLM
    assert importlib.util.find_spec("minimind_hf") is None, "minimind_hf must not be importable here"
    folder = sys.argv[1]
    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()
    expected = torch.load(folder + "/expected.pt")
    with torch.no_grad():
        logits = model(expected["input_ids"]).logits
    torch.testing.assert_close(logits, expected["logits"], atol=1e-6, rtol=0)
    print("REMOTE-OK", type(model).__module__)
    """
)


def test_remote_code_load_without_package(tmp_path):
    model = build(small_config(use_moe=True, moe_intermediate_size=32, n_shared_experts=1))
    folder = tmp_path / "checkpoint"
    model.save_pretrained(folder)
    input_ids = torch.randint(3, VOCAB, (2, 10))
    with torch.no_grad():
        torch.save({"input_ids": input_ids, "logits": model(input_ids).logits}, folder / "expected.pt")
    # -S skips site.py, so the editable install's .pth finder never runs; PYTHONPATH gives back only site-packages.
    site_packages = str(Path(transformers.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=site_packages, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-S", "-c", REMOTE_CODE_SCRIPT, str(folder)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REMOTE-OK transformers_modules" in result.stdout
