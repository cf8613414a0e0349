"""Faults a long distributed run meets (slow: each launches 2 processes): a hung rank ends the run within
`ddp_timeout` on CPU (gloo) too."""

import time

import pytest
from sft_testing import launch, make_base_model, make_sft_data, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def base(workdir):
    return {"model_name_or_path": make_base_model(workdir / "base"),
            "dataset_name": make_sft_data(workdir / "data.jsonl", 24)}  # fmt: skip


def test_a_stopped_rank_ends_the_run_within_ddp_timeout(workdir, base):
    """Rank 1 SIGSTOPs itself at step 2: rank 0 must give up after ddp_timeout (15 s), not gloo's default 30 min."""
    config = write_config(workdir / "hung.yaml", **base, output_dir=workdir / "hung", ddp_timeout=15,
                          num_train_epochs=3)  # fmt: skip
    start = time.monotonic()
    result = launch(config, processes=2, tmp_path=workdir, check=False, SFT_STOP_RANK_AT_STEP="1:2")
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    assert elapsed < 15 + 150, f"the run took {elapsed:.0f} s to end"  # startup and teardown under load included
    assert "timed out" in result.stderr.lower() or "timeout" in result.stderr.lower(), result.stderr[-3000:]


def test_a_two_process_checkpoint_resumes_on_one_process_at_the_same_sample(workdir, base):
    """2 processes x batch 4 saved checkpoint-2 and -4; resumed by 1 process x batch 8 (same global batch) the run
    trains the same rows for steps 5-6 and ends on the uninterrupted 2-process weights; 1 process x 4 is refused."""
    import shutil

    from sft_testing import assert_weights_close, read_records, weights

    common = {**base, "num_train_epochs": 2, "save_strategy": "steps", "save_steps": 2, "save_total_limit": None}
    reference = workdir / "two_processes"
    config = write_config(workdir / "two.yaml", **common, output_dir=reference)
    launch(config, processes=2, tmp_path=workdir, record_dir=workdir / "two_rows")
    out = workdir / "resumed_on_one"
    for checkpoint in ("checkpoint-2", "checkpoint-4"):
        shutil.copytree(reference / checkpoint, out / checkpoint)
    resume = {**common, "output_dir": out, "resume_from_checkpoint": True}
    refused = launch(write_config(workdir / "one4.yaml", **resume), tmp_path=workdir, check=False)
    assert refused.returncode != 0 and "global batch of 8 (2 processes x 4 per device" in refused.stderr
    config = write_config(workdir / "one8.yaml", **resume, per_device_train_batch_size=8)
    launch(config, tmp_path=workdir, record_dir=workdir / "one_rows")
    (resumed,) = read_records(workdir / "one_rows")
    two = read_records(workdir / "two_rows")
    for step in (4, 5):
        rows = sorted(r for s in resumed["steps"] if s["step"] == step for r in s["rows"])
        expected = sorted(r for rank in two for s in rank["steps"] if s["step"] == step for r in s["rows"])
        assert rows == expected, f"step {step + 1} trained other samples"
    assert_weights_close(weights(out), weights(reference), rtol=1e-4, atol=1e-5)
