"""FSDP2 on CPU: what of configs/accelerate/fsdp.yaml can run on this machine.

accelerate builds an FSDP state only for GPU-like devices: with use_cpu (the only way two CPU processes form a gloo
group) it runs fsdp.yaml as plain DDP (MULTI_CPU), so the recipe itself cannot be tested sharded here. torch's
`fully_shard` does run on 2 CPU ranks over gloo, so this test drives it the way the config asks (each
MiniMindDecoderLayer its own FSDP unit, the root holding the tied embedding / lm_head, reshard after forward): the
parameters really are split across ranks, training matches a 1-process run with the whole batch, the full state dict
gathered on rank 0 saves with `save_pretrained` and reloads with `from_pretrained`, and a sharded (DCP) checkpoint
resumes to the same weights as the uninterrupted run."""

import json
import sys
from pathlib import Path

import pytest
import torch
from sft_testing import free_port, make_base_model, make_sft_data, run, subprocess_env, weights

import minimind_hf  # noqa: F401  (registers MiniMind)

STEPS, RESUME_AT, PER_RANK = 4, 2, 2

WORKER = r"""
import json, os, sys
import torch, torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_state_dict, set_state_dict
import torch.distributed.checkpoint as dcp
from torch.distributed.fsdp import fully_shard
from transformers import AutoModelForCausalLM, AutoTokenizer
import minimind_hf
from minimind_hf.collator import build_collator
from minimind_hf.masking import tokenize_conversation
from minimind_hf.modeling_minimind import MiniMindDecoderLayer

base, data, out, first_step, last_step, per_rank, checkpoint_at = sys.argv[1:8]
first_step, last_step, per_rank, checkpoint_at = int(first_step), int(last_step), int(per_rank), int(checkpoint_at)
sharded = "WORLD_SIZE" in os.environ
if sharded:
    dist.init_process_group("gloo")
rank, world = (dist.get_rank(), dist.get_world_size()) if sharded else (0, 1)
torch.manual_seed(0)
tokenizer = AutoTokenizer.from_pretrained(base)
model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
if sharded:
    for layer in model.modules():
        if isinstance(layer, MiniMindDecoderLayer):
            fully_shard(layer, reshard_after_forward=True)
    fully_shard(model, reshard_after_forward=True)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
if first_step > 1:  # resume from the sharded checkpoint written at step first_step - 1
    state = {"model": None, "optim": None}
    state["model"], state["optim"] = get_state_dict(model, optimizer)
    dcp.load(state, checkpoint_id=os.path.join(os.path.dirname(out), "dcp"))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
rows = [tokenize_conversation(json.loads(line)["conversations"], tokenizer, max_length=96)
        for line in open(data, encoding="utf-8")]
collate = build_collator(tokenizer)
global_batch = per_rank * (world if sharded else 2)
local = {"sharded": sharded, "world_size": world}
if sharded:
    embed = model.get_input_embeddings().weight
    local["embed_local_rows"] = embed.to_local().shape[0]
    local["embed_rows"] = embed.shape[0]
    local["tied"] = model.lm_head.weight is embed
losses = []
for step in range(first_step, last_step + 1):
    batch_rows = rows[(step - 1) * global_batch : step * global_batch]
    mine = batch_rows[rank * per_rank : (rank + 1) * per_rank] if sharded else batch_rows
    batch = collate([{k: v for k, v in r.items() if k in ("input_ids", "labels")} for r in mine])
    supervised = sum(sum(1 for t in r["labels"][1:] if t != -100) for r in batch_rows)
    # FSDP averages gradients over ranks: scale each rank's token-sum loss as Trainer does for DDP.
    loss = model(**batch, num_items_in_batch=supervised).loss * world
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    losses.append(loss.item() / world)
    if sharded and step == checkpoint_at:
        model_state, optim_state = get_state_dict(model, optimizer)
        dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=os.path.join(os.path.dirname(out), "dcp"))
if sharded:
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
else:
    full = model.state_dict()
if rank == 0:
    saved = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    saved.load_state_dict(full)
    saved.save_pretrained(out)
    tokenizer.save_pretrained(out)
with open(os.path.join(out + f".rank{rank}.json"), "w") as f:
    json.dump({**local, "losses": losses}, f)
if sharded:
    dist.destroy_process_group()
"""


def _launch(tmp_path, worker, base, data, out, first, last, ranks):
    """The worker for steps first..last: plain `python` (1 process, unsharded) or `torchrun` with 2 ranks."""
    args = [worker, base, data, out, first, last, PER_RANK, RESUME_AT]
    if ranks == 1:
        cmd = [sys.executable, *args]
    else:
        torchrun = Path(sys.executable).parent / "torchrun"
        cmd = [torchrun, "--nproc_per_node", ranks, "--master_port", free_port(), *args]
    run(cmd, subprocess_env())
    return [json.loads((tmp_path / f"{out.name}.rank{r}.json").read_text()) for r in range(ranks)]


@pytest.mark.slow
def test_fully_shard_trains_saves_and_resumes_on_two_cpu_ranks(tmp_path):
    from transformers import AutoModelForCausalLM

    base = make_base_model(tmp_path / "base")
    data = make_sft_data(tmp_path / "data.jsonl", STEPS * PER_RANK * 2)
    worker = tmp_path / "fsdp_worker.py"
    worker.write_text(WORKER, encoding="utf-8")

    reference = _launch(tmp_path, worker, base, data, tmp_path / "reference", 1, STEPS, ranks=1)
    sharded = _launch(tmp_path, worker, base, data, tmp_path / "sharded", 1, STEPS, ranks=2)
    for record in sharded:
        assert record["sharded"] and record["world_size"] == 2 and record["tied"]
        assert record["embed_local_rows"] * 2 == record["embed_rows"]  # each rank holds half the embedding
    total = [a + b for a, b in zip(sharded[0]["losses"], sharded[1]["losses"], strict=True)]
    assert total == pytest.approx(reference[0]["losses"], abs=1e-4)

    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "sharded")
    expected = AutoModelForCausalLM.from_pretrained(tmp_path / "reference")
    for (name, tensor), (_, want) in zip(reloaded.state_dict().items(), expected.state_dict().items(), strict=True):
        torch.testing.assert_close(tensor, want, rtol=1e-4, atol=1e-5, msg=name)
    assert reloaded.lm_head.weight.data_ptr() == reloaded.model.embed_tokens.weight.data_ptr()

    resumed = _launch(tmp_path, worker, base, data, tmp_path / "resumed", RESUME_AT + 1, STEPS, ranks=2)
    assert [a + b for a, b in zip(resumed[0]["losses"], resumed[1]["losses"], strict=True)] == pytest.approx(
        total[RESUME_AT:], abs=1e-6
    )
    for name, tensor in weights(tmp_path / "sharded").items():
        torch.testing.assert_close(weights(tmp_path / "resumed")[name], tensor, rtol=0, atol=1e-6, msg=name)
