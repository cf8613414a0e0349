"""configs/accelerate/multi_node_ddp.yaml on this machine as two "machines": two `accelerate launch` commands with
--num_machines 2 and --machine_rank 0 / 1, one process each, meeting at 127.0.0.1 over gloo. Together they must form
one world of size 2, give each rank different rows, and end on the weights of a 1-process run with the doubled
batch (which tests/test_distributed.py shows 2 processes on one machine also reach)."""

import subprocess
from collections import Counter

import pytest
from sft_testing import (
    ACCELERATE,
    RECIPE,
    REPO_DIR,
    assert_weights_close,
    free_port,
    harness,
    launch,
    logged_losses,
    make_base_model,
    make_sft_data,
    read_records,
    subprocess_env,
    weights,
    write_config,
)

import minimind_hf  # noqa: F401  (registers MiniMind)


def _rows_per_step(record) -> list[Counter]:
    steps: dict[int, Counter] = {}
    for micro in record["steps"]:
        steps.setdefault(micro["step"], Counter()).update(tuple(row) for row in micro["rows"])
    return [steps[step] for step in sorted(steps)]


@pytest.mark.slow
def test_two_machines_form_one_world_and_match_one_process(tmp_path):
    base = {"model_name_or_path": make_base_model(tmp_path / "base"),
            "dataset_name": make_sft_data(tmp_path / "data.jsonl", 24), "num_train_epochs": 2}  # fmt: skip
    reference = tmp_path / "reference"
    launch(write_config(tmp_path / "reference.yaml", **base, per_device_train_batch_size=8, output_dir=reference),
           tmp_path=tmp_path, record_dir=reference / "records")  # fmt: skip

    out = tmp_path / "two_machines"
    run = write_config(tmp_path / "two_machines.yaml", **base, per_device_train_batch_size=4, output_dir=out)
    port = free_port()
    env = subprocess_env(SFT_RECORD_DIR=out / "records")
    (out / "records").mkdir(parents=True)
    machines = []
    for machine_rank in (0, 1):  # exactly what each real node runs, with its own --machine_rank
        cmd = [ACCELERATE, "launch", "--config_file", REPO_DIR / "configs/accelerate/multi_node_ddp.yaml",
               "--num_machines", 2, "--num_processes", 2, "--machine_rank", machine_rank,
               "--main_process_ip", "127.0.0.1", "--main_process_port", port, "--dynamo_backend", "no",
               harness(tmp_path), RECIPE, run]  # fmt: skip
        machines.append(subprocess.Popen([str(c) for c in cmd], cwd=REPO_DIR, env=env, text=True,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT))  # fmt: skip
    for machine_rank, machine in enumerate(machines):
        output, _ = machine.communicate(timeout=600)
        assert machine.returncode == 0, f"machine {machine_rank} exited with {machine.returncode}\n{output[-6000:]}"

    records = read_records(out / "records")
    assert [(r["rank"], r["world_size"], r["distributed_type"]) for r in records] == [
        (0, 2, "DistributedType.MULTI_CPU"),
        (1, 2, "DistributedType.MULTI_CPU"),
    ]
    ref_steps = _rows_per_step(read_records(reference / "records")[0])
    rank0, rank1 = (_rows_per_step(r) for r in records)
    assert len(rank0) == len(rank1) == len(ref_steps) == 6
    for step, (rows0, rows1, expected) in enumerate(zip(rank0, rank1, ref_steps, strict=True)):
        assert not rows0 & rows1, f"step {step}: both machines trained on the same rows"
        assert rows0 + rows1 == expected, f"step {step}: the machines together did not see the 1-process batch"
    assert logged_losses(out) == pytest.approx(logged_losses(reference), abs=1e-4)
    assert_weights_close(weights(out), weights(reference))
