"""SIGTERM mid-run (what a scheduler sends before it kills the job): the run finishes its step, saves a complete
checkpoint of it, and exits 128 + 15 within seconds with a message naming that checkpoint; no final model pretends
the run finished."""

import json
import signal
import subprocess
import sys
import time

import pytest
from sft_testing import RECIPE, REPO_DIR, make_base_model, make_sft_data, subprocess_env, write_config

from minimind_hf.checkpoints import checkpoint_problem


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_with_a_message(tmp_path):
    out = tmp_path / "out"
    run = write_config(tmp_path / "run.yaml", model_name_or_path=make_base_model(tmp_path / "base"),
                       dataset_name=make_sft_data(tmp_path / "data.jsonl", 16), max_steps=100_000,
                       save_strategy="steps", save_steps=50_000, output_dir=out)  # fmt: skip
    recipe = subprocess.Popen([sys.executable, str(RECIPE), str(run)], cwd=REPO_DIR, env=subprocess_env(), text=True,
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

    assert recipe.returncode == 128 + signal.SIGTERM, output[-4000:]
    assert elapsed < 30, f"took {elapsed:.0f} s to stop"
    checkpoints = sorted(out.glob("checkpoint-*"))
    assert len(checkpoints) == 1, output[-4000:]
    step = json.loads((checkpoints[0] / "trainer_state.json").read_text())["global_step"]
    assert checkpoints[0].name == f"checkpoint-{step}" and step > 0
    assert checkpoint_problem(checkpoints[0]) is None  # everything a resume needs
    assert f"Stopped by SIGTERM after step {step}; checkpoint {checkpoints[0]} holds it" in output
    assert "Traceback" not in output
    assert not (out / "model.safetensors").exists()  # no final model: the run did not finish
