"""The training bench's target rows (bench/train_report.py): what `make bench` says is met, from the runs it made."""

import pytest
from sft_testing import REPO_DIR


@pytest.fixture
def train_report(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_DIR / "bench"))
    import train_report

    return train_report


def run(variant, real_tok_s, heldout_loss=2.0, preset="minimind2-small"):
    return {"preset": preset, "variant": variant, "real_tok_s": real_tok_s, "heldout_loss": heldout_loss}


def rows(checks):
    return {what: (met, figure) for what, met, figure in checks}


def test_speed_targets_are_checked_against_the_faster_native_run(train_report):
    results = [run("native", 100.0), run("native_step0", 110.0), run("ours", 320.0), run("ours_compile", 341.0)]
    checks = rows(train_report.target_checks(results))
    ours = next(v for k, v in checks.items() if k.startswith("recommended CPU config"))
    compiled = next(v for k, v in checks.items() if "torch_compile" in k)
    assert ours == (False, "2.91×")  # 320 / 110, not 320 / 100
    assert compiled == (True, "3.10×")
    assert all("`native_step0`" in k for k in checks if "≥" in k)


def test_loss_targets_compare_every_run_of_ours_with_native_step0(train_report):
    results = [run("native", 100.0, 2.00), run("native_step0", 100.0, 2.10), run("ours_compile", 300.0, 2.13)]
    checks = rows(train_report.target_checks(results))
    assert checks["`ours_compile` held-out loss within 1% of `native_step0`"] == (False, "+1.43%")
    assert not any(k.startswith("`native") for k in checks)  # native runs are the baseline, not rows of their own


def test_failed_runs_and_other_presets_make_no_rows(train_report):
    results = [
        run("native", 100.0),
        {"preset": "minimind2-small", "variant": "ours_compile", "error": "compile failed"},
        run("ours", 400.0, preset="minimind-3-moe"),
    ]
    assert train_report.target_checks(results) == []
