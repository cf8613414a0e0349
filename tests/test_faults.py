"""Faults a long distributed run meets (slow: each launches 2 processes): a hung rank ends the run within
`ddp_timeout` on CPU (gloo) too."""

import time

import pytest
from sft_testing import launch, make_base_model, make_sft_data, write_config

from minimind_hf import MiniMindConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def base(workdir):
    config = MiniMindConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128
    )
    return {"model_name_or_path": make_base_model(workdir / "base", config),
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
