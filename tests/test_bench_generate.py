"""The generation bench (bench/bench_generate.py) on a tiny model: what `make bench`'s generation rows are built from."""

import pytest
import torch
from sft_testing import REFERENCE_TOKENIZERS, REPO_DIR, TINY_FIELDS


@pytest.fixture
def bench_generate(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_DIR / "bench"))
    import bench_generate

    return bench_generate


def test_measure_times_every_round_and_decodes_the_native_loops_greedy_tokens(bench_generate):
    from transformers import AutoTokenizer

    from minimind_hf import MiniMindConfig, MiniMindForCausalLM

    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("minimind-3", use_cache=True, **TINY_FIELDS)).eval()
    model.generation_config.pad_token_id = 0
    input_ids = bench_generate.prompts_batch(AutoTokenizer.from_pretrained(REFERENCE_TOKENIZERS["minimind3"]), 2)
    results = bench_generate.measure(model, input_ids, 6, repeats=3, device="cpu", no_cache=True)
    by = {r["run"]: r for r in results}
    assert {len(r["times"]) for r in results} == {3}
    for name in (bench_generate.GREEDY, bench_generate.GREEDY_INFERENCE, "ours: model.generate, fp32, no cache"):
        assert by[name]["same_greedy_tokens"] is True, name
    for name in (bench_generate.SAMPLING_INFERENCE, bench_generate.SAMPLING_HF_WARPERS):
        assert by[name]["baseline"] == bench_generate.NATIVE_SAMPLING
    assert bench_generate.speedup(by[bench_generate.GREEDY], by[bench_generate.GREEDY]) == 1.0


def test_speedup_compares_the_runs_round_by_round(bench_generate):
    """A slow round for both runs (host noise) cancels: the ratio is taken within each round, then the median."""
    ours, theirs = {"times": [1.0, 3.0, 3.0]}, {"times": [2.0, 2.0, 4.0]}
    assert bench_generate.speedup(ours, theirs) == pytest.approx(4 / 3)  # rounds: 2, 2/3, 4/3
    assert bench_generate.speedup(theirs, ours) == pytest.approx(3 / 4)
