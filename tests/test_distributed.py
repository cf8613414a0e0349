"""recipes/sft.py with 2 processes on CPU (gloo), launched through the shipped configs/accelerate files: DDP, DeepSpeed
ZeRO-2 and ZeRO-3 (full model and LoRA). (fsdp.yaml is not covered: on CPU, accelerate runs it as plain DDP.) Each run must see world size 2, give each rank different rows, and end on
the weights (and log the losses) of a 1-process run with the doubled batch; so must gradient accumulation."""

import json
from collections import Counter

import pytest
from sft_testing import (
    assert_weights_close,
    launch,
    logged_losses,
    make_base_model,
    make_sft_data,
    read_records,
    weights,
    write_config,
)

import minimind_hf  # noqa: F401  (registers MiniMind)

# 24 conversations, global batch 8, 2 epochs: 6 optimizer steps.
RUN = {"num_train_epochs": 2, "learning_rate": 1e-3}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("distributed")


@pytest.fixture(scope="module")
def base(workdir):
    return {"model_name_or_path": make_base_model(workdir / "base"),
            "dataset_name": make_sft_data(workdir / "data.jsonl", 24), **RUN}  # fmt: skip


def _run(workdir, base, name, batch, processes=1, accelerate_config=None, **fields):
    out = workdir / name
    fields = {**base, "per_device_train_batch_size": batch, "output_dir": out, **fields}
    config = write_config(workdir / f"{name}.yaml", **fields)
    result = launch(config, processes=processes, accelerate_config=accelerate_config, record_dir=out / "records",
                    tmp_path=workdir)  # fmt: skip
    return out, read_records(out / "records"), result


@pytest.fixture(scope="module")
def reference(workdir, base):
    """One process, batch 8."""
    out, records, _ = _run(workdir, base, "reference", batch=8)
    return out, _rows_per_step(records[0])


def _rows_per_step(record) -> list[Counter]:
    steps: dict[int, Counter] = {}
    for micro in record["steps"]:
        steps.setdefault(micro["step"], Counter()).update(tuple(row) for row in micro["rows"])
    return [steps[step] for step in sorted(steps)]


def _assert_matches_reference(out, records, reference, distributed_type, zero_stage=None):
    ref_out, ref_steps = reference
    launched = [(r["world_size"], r["distributed_type"], r["zero_stage"]) for r in records]
    assert launched == [(2, f"DistributedType.{distributed_type}", zero_stage)] * 2
    rank0, rank1 = (_rows_per_step(r) for r in records)
    assert len(rank0) == len(rank1) == len(ref_steps) == 6
    for step, (rows0, rows1, expected) in enumerate(zip(rank0, rank1, ref_steps, strict=True)):
        assert not rows0 & rows1, f"step {step}: both ranks trained on the same rows"
        assert rows0 + rows1 == expected, f"step {step}: the ranks together did not see the 1-process batch"
    assert logged_losses(out) == pytest.approx(logged_losses(ref_out), abs=1e-4)
    assert _final_log(out)["num_tokens"] == _final_log(ref_out)["num_tokens"]  # token counts summed over ranks
    assert_weights_close(weights(out), weights(ref_out))


def _final_log(folder) -> dict:
    history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
    return [entry for entry in history if "loss" in entry][-1]


def test_gradient_accumulation_matches_the_doubled_batch(workdir, base, reference):
    out, records, _ = _run(workdir, base, "accumulation", batch=4, gradient_accumulation_steps=2)
    assert _rows_per_step(records[0]) == reference[1]
    assert logged_losses(out) == pytest.approx(logged_losses(reference[0]), abs=1e-4)
    assert_weights_close(weights(out), weights(reference[0]))


def test_ddp_two_processes_match_one_process(workdir, base, reference):
    out, records, result = _run(workdir, base, "ddp", batch=4, processes=2,
                                accelerate_config="configs/accelerate/ddp.yaml")  # fmt: skip
    _assert_matches_reference(out, records, reference, "MULTI_CPU")
    # The run header says how the run is laid out, once (rank 0), by default.
    header = "Training on 2 processes (cpu, fp32): 4 per device x 1 accumulation x 2 = 8 conversations per optimizer"
    assert result.stderr.count(header) == 1, result.stderr[-3000:]


def test_deepspeed_zero2_matches_one_process(workdir, base, reference):
    out, records, _ = _run(workdir, base, "zero2", batch=4, processes=2,
                           accelerate_config="configs/accelerate/deepspeed_zero2.yaml")  # fmt: skip
    _assert_matches_reference(out, records, reference, "DEEPSPEED", zero_stage=2)


def test_deepspeed_zero3_saves_a_complete_model(workdir, base, reference):
    from transformers import AutoModelForCausalLM

    out, records, _ = _run(workdir, base, "zero3", batch=4, processes=2,
                           accelerate_config="configs/accelerate/deepspeed_zero3.yaml")  # fmt: skip
    _assert_matches_reference(out, records, reference, "DEEPSPEED", zero_stage=3)
    model = AutoModelForCausalLM.from_pretrained(out)  # a fresh load, outside DeepSpeed
    saved = weights(out)
    assert all(tensor.numel() > 0 for tensor in saved.values())
    assert set(saved) | {"lm_head.weight"} == set(model.state_dict())


def test_deepspeed_zero3_lora_adapter_is_not_empty(workdir, base):
    from peft import AutoPeftModelForCausalLM
    from safetensors.torch import load_file

    out, records, _ = _run(workdir, base, "zero3_lora", batch=4, processes=2, use_peft=True, learning_rate=1e-2,
                           accelerate_config="configs/accelerate/deepspeed_zero3.yaml")  # fmt: skip
    launched = [(r["world_size"], r["distributed_type"], r["zero_stage"]) for r in records]
    assert launched == [(2, "DistributedType.DEEPSPEED", 3)] * 2
    adapter = load_file(str(out / "adapter_model.safetensors"))
    hidden, layers = 64, 2
    assert len(adapter) == layers * 2 * 2  # q_proj and o_proj, A and B, per layer
    for name, tensor in adapter.items():
        assert tensor.numel() > 0 and 16 in tensor.shape and hidden in tensor.shape, (name, tensor.shape)
        if "lora_B" in name:
            assert tensor.abs().sum() > 0, f"{name} was not trained"
    model = AutoPeftModelForCausalLM.from_pretrained(out)
    assert model.peft_config["default"].r == 16
