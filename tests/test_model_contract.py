"""The transformers 5 model contract, one behaviour per test, on tiny dense and MoE MiniMind models: what peers
(Trainer, TRL, peft, generate, torch.export) rely on."""

import pytest
import torch
from peft import LoraConfig, get_peft_model

from minimind_hf import MiniMindConfig, MiniMindForCausalLM, MiniMindModel

VOCAB = 128


def tiny(use_moe: bool, **overrides) -> MiniMindConfig:
    base = dict(
        vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=128, max_position_embeddings=128, use_moe=use_moe, moe_intermediate_size=32,
        num_experts=4, num_experts_per_tok=2, attn_implementation="eager",
    )  # fmt: skip
    return MiniMindConfig(**{**base, **overrides})


KINDS = pytest.mark.parametrize("use_moe", [False, True], ids=["dense", "moe"])


def model_and_ids(use_moe, **overrides):
    torch.manual_seed(0)
    model = MiniMindForCausalLM(tiny(use_moe, **overrides)).eval()
    return model, torch.randint(0, VOCAB, (2, 7))


@KINDS
def test_return_dict_false_returns_a_tuple_from_the_call_and_the_config(use_moe):
    model, ids = model_and_ids(use_moe)
    reference = model(ids, labels=ids)
    loss, logits = model(ids, labels=ids, return_dict=False)[:2]
    torch.testing.assert_close(loss, reference.loss)
    torch.testing.assert_close(logits, reference.logits)
    model.config.return_dict = False
    assert isinstance(model(ids), tuple) and isinstance(model.model(ids), tuple)
    assert not isinstance(model(ids, return_dict=True), tuple)


@KINDS
def test_hidden_states_and_attentions_from_the_config_or_the_call(use_moe):
    model, ids = model_and_ids(use_moe)
    out = model(ids)
    assert out.hidden_states is None and out.attentions is None
    model.config.output_hidden_states = model.config.output_attentions = True
    out = model(ids)
    assert len(out.hidden_states) == 3 and out.hidden_states[0].shape == (2, 7, 64)
    torch.testing.assert_close(out.hidden_states[0], model.model.embed_tokens(ids))
    assert len(out.attentions) == 2 and out.attentions[0].shape == (2, 4, 7, 7)
    torch.testing.assert_close(out.attentions[0].sum(-1), torch.ones(2, 4, 7))  # softmax rows
    assert out.attentions[0][..., 0, 1:].abs().max() == 0  # causal
    model.config.output_hidden_states = model.config.output_attentions = False
    out = model(ids, output_hidden_states=True, output_attentions=True)
    assert len(out.hidden_states) == 3 and len(out.attentions) == 2


def test_generate_returns_attentions_from_eager():
    model, ids = model_and_ids(False)
    out = model.generate(
        ids, max_new_tokens=3, do_sample=False, output_attentions=True, return_dict_in_generate=True
    )  # fmt: skip
    assert len(out.attentions) == 3 and out.attentions[0][0].shape == (2, 4, 7, 7)
    assert out.attentions[1][0].shape == (2, 4, 1, 8)  # cached step: one query over the grown cache


def test_output_router_logits_in_moe_config_only():
    assert tiny(True).output_router_logits is False and not hasattr(tiny(False), "output_router_logits")
    model, ids = model_and_ids(True)
    assert model(ids).router_logits is None and model(ids).aux_loss is None
    model.config.output_router_logits = True
    out = model(ids)
    assert len(out.router_logits) == 2 and out.router_logits[0].shape == (14, 4) and out.aux_loss > 0
    backbone = model.model(ids, output_router_logits=True)  # TRL's fused head reads them from the backbone
    torch.testing.assert_close(backbone.router_logits[1], out.router_logits[1])


def test_padding_is_excluded_from_router_statistics():
    model, ids = model_and_ids(True, aux_loss_type="sequence")
    short = ids[:1, :4]
    padded = torch.cat([short, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0]])
    for aux_loss_type in ("batch", "sequence"):
        model.config.aux_loss_type = aux_loss_type
        alone = model(short, output_router_logits=True).aux_loss
        masked = model(padded, attention_mask=mask, output_router_logits=True).aux_loss
        unmasked = model(padded, output_router_logits=True).aux_loss
        torch.testing.assert_close(masked, alone)
        assert not torch.allclose(unmasked, alone)


@KINDS
def test_torch_compile_fullgraph(use_moe):
    model, ids = model_and_ids(use_moe)
    with torch.no_grad():
        expected = model(ids).logits
        compiled = torch.compile(model, fullgraph=True, backend="eager")
        torch.testing.assert_close(compiled(ids).logits, expected, atol=1e-5, rtol=1e-5)


@KINDS
def test_torch_export(use_moe):
    model, ids = model_and_ids(use_moe)
    backbone = MiniMindModel(model.config).eval()
    backbone.load_state_dict(model.model.state_dict())
    with torch.no_grad():
        expected = backbone(ids, use_cache=False).last_hidden_state
        program = torch.export.export(backbone, (ids,), kwargs={"use_cache": False})
        torch.testing.assert_close(program.module()(ids, use_cache=False).last_hidden_state, expected)


@KINDS
def test_lora_config_without_target_modules(use_moe):
    model, ids = model_and_ids(use_moe)
    peft_model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=4))
    wrapped = {name.rsplit(".", 1)[-1] for name, module in peft_model.named_modules() if hasattr(module, "lora_A")}
    assert wrapped == {"q_proj", "o_proj"}  # MiniMind's own LoRA targets
    peft_model.train()
    peft_model(ids, labels=ids).loss.backward()
    assert all(p.grad is not None for n, p in peft_model.named_parameters() if p.requires_grad)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_padding_free_rows_attend_within_their_sequence(attn):
    """TRL's padding_free collator sends concatenated sequences with restarting position_ids and no mask."""
    model, ids = model_and_ids(True, attn_implementation=attn)
    first, second = ids[:1, :5], ids[1:, :4]
    position_ids = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2, 3]])
    packed = model(torch.cat([first, second], dim=1), position_ids=position_ids, use_cache=False).logits
    torch.testing.assert_close(packed[:, :5], model(first).logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(packed[:, 5:], model(second).logits, atol=1e-5, rtol=1e-5)
