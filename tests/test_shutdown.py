"""SIGTERM mid-run (what a scheduler sends before it kills the job): the run finishes its step, saves a complete
checkpoint of it, and exits 128 + 15 within seconds with a message naming that checkpoint; no final model pretends
the run finished."""

import json
import signal
import subprocess
import sys
import time

import pytest
from sft_testing import (
    ACCELERATE,
    RECIPE,
    REPO_DIR,
    free_port,
    make_base_model,
    make_sft_data,
    subprocess_env,
    write_config,
)

from minimind_hf.checkpoints import checkpoint_problem


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_sigterm_saves_a_checkpoint_and_exits_with_a_message(tmp_path, processes):
    out = tmp_path / "out"
    run = write_config(tmp_path / "run.yaml", model_name_or_path=make_base_model(tmp_path / "base"),
                       dataset_name=make_sft_data(tmp_path / "data.jsonl", 16), max_steps=100_000,
                       save_strategy="steps", save_steps=50_000, output_dir=out)  # fmt: skip
    command = [sys.executable, str(RECIPE), str(run)]
    if processes > 1:  # a scheduler signals the launcher, which passes SIGTERM on to every rank
        command = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines",
                   "1", "--dynamo_backend", "no", "--main_process_port", str(free_port()), *command[1:]]  # fmt: skip
    recipe = subprocess.Popen(command, cwd=REPO_DIR, env=subprocess_env(ACCELERATE_USE_CPU="true"), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    output = []
    for line in recipe.stdout:  # wait until it trains
        output.append(line)
        if "'loss'" in line and "'epoch'" in line:
            break
    recipe.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    output.append(recipe.communicate(timeout=120)[0])
    elapsed, output = time.monotonic() - sent, "".join(output)

    assert f"Training on {processes} process" in output, output[-4000:]
    assert recipe.returncode == 128 + signal.SIGTERM or (processes > 1 and recipe.returncode != 0), output[-4000:]
    assert elapsed < 30, f"took {elapsed:.0f} s to stop"
    checkpoints = sorted(out.glob("checkpoint-*"))
    assert len(checkpoints) == 1, output[-4000:]
    step = json.loads((checkpoints[0] / "trainer_state.json").read_text())["global_step"]
    assert checkpoints[0].name == f"checkpoint-{step}" and step > 0
    assert checkpoint_problem(checkpoints[0]) is None  # everything a resume needs
    assert output.count(f"Stopped by SIGTERM after step {step}; checkpoint {checkpoints[0]} holds it") == 1
    # No rank fails; under a launcher, torch elastic's agent reports the signal it got with a traceback of its own.
    tracebacks = output.split("Traceback (most recent call last):")[1:]
    assert all("torch/distributed/elastic" in tb and "minimind_hf" not in tb for tb in tracebacks), output[-5000:]
    assert processes > 1 or not tracebacks
    assert not (out / "model.safetensors").exists()  # no final model: the run did not finish
