"""The compile bench (bench/bench_compile.py): when `torch_compile` pays, as `make bench --sweep` reports it."""

import pytest
from sft_testing import REPO_DIR


@pytest.fixture
def bench_compile(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_DIR / "bench"))
    import bench_compile

    return bench_compile


SPEC = {"preset": "minimind2-small", "batch_size": 16, "max_length": 340}


def measured(eager_s, compiled_s, warm_eager=(6.0, 6.0), warm_compiled=(60.0, 30.0)):
    settings = {"bf16": False, "padding": "none (packed)", "attn": "sdpa_packed", "optim": "adamw_torch"}
    return {
        "warm_eager": list(warm_eager), "warm_compiled": list(warm_compiled), "eager_s": eager_s,
        "compiled_s": compiled_s, "tokens": 10_000, "first_loss": (8.75, 8.75), "threads": 2, "backend": "inductor",
        "mode": None, "settings": settings,
    }  # fmt: skip


def test_compile_pays_after_its_cost_divided_by_the_time_each_step_saves(bench_compile):
    # cost: 90 s compiled - 12 s eager = 78 s; median step 5.0 s eager, 4.0 s compiled: 78 steps, 78 * 5 s = 6.5 min
    report = bench_compile.format_result(measured([5.0, 5.0, 6.0], [4.0, 4.0, 5.0]), SPEC)
    assert "Compile costs **78 s**" in report
    assert "pays after **78 steps** (~6 min of eager training)" in report
    assert "**1.25×**" in report  # median of the rounds' ratios 1.25, 1.25, 1.2
    assert "| then 3 interleaved steps: median s/step | 5.00 | 4.00 |" in report


def test_a_compiled_step_that_is_not_faster_never_pays(bench_compile):
    report = bench_compile.format_result(measured([4.0, 4.0], [4.0, 4.5]), SPEC)
    assert "pays **never**" in report


@pytest.mark.slow
def test_run_compiles_the_recommended_config_and_trains_the_same_first_step(bench_compile):
    """A real compile of the recipe's model on its packed batches: every step timed on both copies, and the compiled
    model's first loss (same weights, same batch) equal to the eager one."""
    import re

    report = bench_compile.run("minimind-tiny", batch_size=4, max_length=128, compile_steps=2, rounds=2)
    assert "| compile phase: first 2 steps (s each) |" in report
    assert "| then 2 interleaved steps: median s/step |" in report
    eager, compiled = map(float, re.search(r"eager (\d+\.\d+), compiled (\d+\.\d+)\.", report).groups())
    assert compiled == pytest.approx(eager, abs=1e-3)
