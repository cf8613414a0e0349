"""TRL as a client of MiniMind (dense and MoE): SFTTrainer (plain, assistant_only_loss, padding_free, LoRA) and
DPOTrainer run a few steps on tiny models with the bundled tokenizer, and the MoE router trains through TRL's aux loss.
The fast cases cover each trainer once; the other dense/MoE combinations are slow-marked."""

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoTokenizer, TrainerCallback

from minimind_hf import BUNDLED_TOKENIZER_DIR, MiniMindConfig, MiniMindForCausalLM

trl = pytest.importorskip("trl")

TURNS = [
    ("What is 2 + 3?", "2 + 3 = 5."),
    ("Name a colour.", "Blue."),
    ("Say hi.", "Hi!"),
    ("Capital of France?", "Paris."),
]


def tiny_model(use_moe: bool) -> MiniMindForCausalLM:
    torch.manual_seed(0)
    config = MiniMindConfig(
        vocab_size=6400, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=128, max_position_embeddings=256, use_moe=use_moe, moe_intermediate_size=64,
        router_aux_loss_coef=0.1,  # top-1 + norm_topk_prob: the gate learns from this loss only
    )  # fmt: skip
    return MiniMindForCausalLM(config)


def conversations(n=8):
    return Dataset.from_list(
        [
            {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for q, a in TURNS * (n // 4)
        ]
    )


def preferences(n=8):
    rows = [
        {"prompt": [{"role": "user", "content": q}], "chosen": [{"role": "assistant", "content": a}],
         "rejected": [{"role": "assistant", "content": "I don't know."}]}
        for q, a in TURNS * (n // 4)
    ]  # fmt: skip
    return Dataset.from_list(rows)


class GateGradients(TrainerCallback):
    """Records the first MoE gate's gradient norm before every optimizer step."""

    def __init__(self):
        self.norms = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        gate = next(p for n, p in model.named_parameters() if n.endswith("mlp.gate.weight"))
        self.norms.append(0.0 if gate.grad is None else gate.grad.norm().item())


def common_args(tmp_path, **overrides):
    defaults = dict(
        output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4, learning_rate=1e-3, logging_steps=1,
        report_to=[], save_strategy="no", use_cpu=True, bf16=False, dataset_num_proc=None,
    )  # fmt: skip
    return {**defaults, **overrides}


def run_sft(tmp_path, use_moe, peft_config=None, **overrides):
    model = tiny_model(use_moe)
    gates = GateGradients()
    trainer = trl.SFTTrainer(
        model=model,
        args=trl.SFTConfig(**common_args(tmp_path, **{"max_length": 64, **overrides})),
        train_dataset=conversations(),
        processing_class=AutoTokenizer.from_pretrained(BUNDLED_TOKENIZER_DIR),
        peft_config=peft_config,
        callbacks=[gates] if use_moe and peft_config is None else [],
    )
    trainer.train()
    logs = [log for log in trainer.state.log_history if "loss" in log]
    assert len(logs) == 2 and all(torch.isfinite(torch.tensor(log["loss"])) for log in logs)
    return trainer, logs, gates.norms


SFT_MODES = {
    "plain": {},
    "assistant_only_loss": {"assistant_only_loss": True},
    "padding_free": {"padding_free": True, "max_length": None},
}
FAST = {("plain", True), ("assistant_only_loss", False), ("padding_free", True)}


def sft_case(mode, moe):
    marks = [] if (mode, moe) in FAST else [pytest.mark.slow]
    return pytest.param(mode, moe, id=f"{mode}-{'moe' if moe else 'dense'}", marks=marks)


@pytest.mark.parametrize("mode, use_moe", [sft_case(mode, moe) for mode in SFT_MODES for moe in (False, True)])
def test_sft_trainer(tmp_path, mode, use_moe):
    trainer, logs, gate_norms = run_sft(tmp_path, use_moe, **SFT_MODES[mode])
    if use_moe:  # TRL found output_router_logits in the config, asked for router logits and added the aux loss
        assert all(log["aux_loss"] > 0 for log in logs) and min(gate_norms) > 1e-4
    else:
        assert "aux_loss" not in logs[0]
    if mode == "assistant_only_loss":
        batch = next(iter(trainer.get_train_dataloader()))
        labels, ids = batch["labels"][0], batch["input_ids"][0]
        text = trainer.processing_class.decode(ids[labels != -100])
        assert text.endswith("<|im_end|>\n") and any(a in text for _, a in TURNS)  # the answer, after the template
        assert not any(q in text for q, _ in TURNS) and "user" not in text


def test_moe_router_gets_no_gradient_without_the_aux_loss(tmp_path):
    """The control for the gate assertion above: TRL with router_aux_loss_coef=0 leaves the top-1 gate untrained."""
    _, logs, gate_norms = run_sft(tmp_path, True, router_aux_loss_coef=0.0)
    assert max(gate_norms) < 1e-6 and "aux_loss" not in logs[0]


@pytest.mark.parametrize("use_moe", [pytest.param(False, marks=pytest.mark.slow), True], ids=["dense", "moe"])
def test_sft_trainer_lora_without_target_modules(tmp_path, use_moe):
    trainer, _, _ = run_sft(tmp_path, use_moe, peft_config=LoraConfig(task_type="CAUSAL_LM", r=4))
    trained = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trained == {"q_proj", "o_proj"}


@pytest.mark.parametrize("use_moe", [pytest.param(False, marks=pytest.mark.slow), True], ids=["dense", "moe"])
def test_dpo_trainer(tmp_path, use_moe):
    tiny_model(use_moe).save_pretrained(tmp_path / "base")  # DPOTrainer loads its reference model from the path
    model = MiniMindForCausalLM.from_pretrained(tmp_path / "base")
    gates = GateGradients()
    trainer = trl.DPOTrainer(
        model=model,
        args=trl.DPOConfig(**common_args(tmp_path / "out", max_length=64, per_device_train_batch_size=2)),
        train_dataset=preferences(),
        processing_class=AutoTokenizer.from_pretrained(BUNDLED_TOKENIZER_DIR),
        callbacks=[gates] if use_moe else [],
    )
    trainer.train()
    logs = [log for log in trainer.state.log_history if "loss" in log]
    assert len(logs) == 2 and all(torch.isfinite(torch.tensor(log["loss"])) for log in logs)
    if use_moe:
        assert all(log["aux_loss"] > 0 for log in logs) and min(gates.norms) > 1e-4
