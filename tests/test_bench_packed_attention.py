"""The packed-attention bench (bench/bench_packed_attention.py), as `make bench --sweep` reports it."""

import re

import pytest
from sft_testing import REPO_DIR

from minimind_hf import packed_attention


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_DIR / "bench"))
    import bench_packed_attention

    return bench_packed_attention


def test_every_row_times_the_paths_on_the_same_attention(bench):
    shipped = packed_attention.EAGER_MAX_LENGTH
    report = bench.run("minimind2-small", rounds=1, lengths=(48,), log=lambda line: None)
    rows = [line for line in report.splitlines() if line.startswith("| 16 x") and "whole model" not in line]
    assert [row.split(" | ")[:2] for row in rows] == [
        ["| 16 x 48", "bf16 autocast"],
        ["| 16 x 60-340 (sft_512-like)", "bf16 autocast"],
        ["| 16 x 60-340 (sft_512-like)", "fp32"],
    ]
    for row in rows:
        difference = float(re.search(r"\| ([0-9.e+-]+) \|$", row).group(1))
        assert difference < 0.05  # eager and the flash kernel agree to bfloat16 rounding: the same attention
    (model_row,) = [line for line in report.splitlines() if "whole model" in line and line.startswith("|")]
    assert float(re.search(r"\| ([0-9.e+-]+) \|$", model_row).group(1)) < 1e-2  # the same loss on both paths
    assert packed_attention.EAGER_MAX_LENGTH == shipped  # the bench's switch is undone
