"""The training bench's baseline (bench/native_loop.py + native_sft_dataset.py) against MiniMind's own code, imported
from a checkout named by $MINIMIND_NATIVE_REF (bench/native_ref.py; never copied into this repo): same initial
weights, same conversations, so the per-step losses must agree. Skipped without a checkout (see bench/README.md)."""

import os
import sys

import pytest
import torch
from sft_testing import REFERENCE_TOKENIZERS, REPO_DIR, TINY_FIELDS

pytestmark = pytest.mark.slow
CHECKOUT = os.environ.get("MINIMIND_NATIVE_REF")


@pytest.fixture
def bench_modules(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_DIR / "bench"))
    import native_loop
    import native_ref
    import native_sft_dataset
    import step_meter
    import synth_sft

    yield native_loop, native_ref, native_sft_dataset, step_meter, synth_sft
    for name in ("model", "dataset", "trainer"):  # the checkout's packages, imported by native_ref
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            sys.modules.pop(module)


@pytest.mark.skipif(not CHECKOUT, reason="set MINIMIND_NATIVE_REF to a MiniMind checkout (bench/README.md)")
def test_bench_native_loop_trains_as_minimind_own_code(tmp_path, bench_modules):
    native_loop, native_ref, native_sft_dataset, step_meter, synth_sft = bench_modules
    from transformers import AutoTokenizer

    from minimind_hf import MiniMindConfig, MiniMindForCausalLM

    torch.manual_seed(0)
    config = MiniMindConfig.from_preset("minimind-3", **TINY_FIELDS)  # MiniMind's current architecture, tiny
    MiniMindForCausalLM(config).save_pretrained(tmp_path / "init")
    tokenizer = AutoTokenizer.from_pretrained(REFERENCE_TOKENIZERS["minimind3"])
    tokenizer.save_pretrained(tmp_path / "init")
    data = synth_sft.generate(str(tmp_path / "train.jsonl"), 12, seed=1)
    spec = {"native_ref": CHECKOUT, "init_dir": str(tmp_path / "init"), "device": "cpu", "train_path": data,
            "max_length": 128, "learning_rate": 1e-3, "workdir": str(tmp_path), "batch_size": 4, "num_workers": 0}  # fmt: skip

    theirs = step_meter.StepMeter(tokenizer.pad_token_id, cuda=False)
    native_ref.run(spec, theirs, tokenizer, config)
    ours = step_meter.StepMeter(tokenizer.pad_token_id, cuda=False)
    model = MiniMindForCausalLM.from_pretrained(tmp_path / "init", attn_implementation="sdpa")
    dataset = native_sft_dataset.NativeSFTDataset(data, tokenizer, max_length=128)

    def on_step(step, input_ids, labels, loss):
        ours.count(input_ids, None, labels)
        ours.step_end(loss)

    native_loop.train_native(model, dataset, batch_size=4, learning_rate=1e-3, on_step=on_step,
                             model_kwargs={"skip_logits": False})  # fmt: skip

    assert len(theirs.losses) == len(ours.losses) == 3
    assert [c[:2] for c in theirs.counts] == [[int(x) for x in c[:2]] for c in ours.counts]  # same batches
    ours_losses = [float(x) for x in ours.losses]
    assert ours_losses == pytest.approx(theirs.losses, rel=1e-3), (ours_losses, theirs.losses)
    assert theirs.losses[-1] < theirs.losses[0]  # it trained


@pytest.mark.skipif(not CHECKOUT, reason="set MINIMIND_NATIVE_REF to a MiniMind checkout (bench/README.md)")
def test_bench_native_generate_decodes_as_minimind_own_generate(bench_modules):
    """The generation bench's baseline (bench_generate.native_generate, with the attention mask MiniMind's eval_llm.py
    passes) and model.generate produce MiniMind's own generate's greedy tokens on the same weights."""
    import bench_generate
    from transformers import AutoTokenizer

    from minimind_hf import MiniMindConfig, MiniMindForCausalLM

    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("minimind-3", **TINY_FIELDS)).eval()
    ref = bench_generate.load_native_ref(CHECKOUT, model)
    tokenizer = AutoTokenizer.from_pretrained(REFERENCE_TOKENIZERS["minimind3"])
    input_ids = bench_generate.prompts_batch(tokenizer, 2)
    theirs = bench_generate.ref_generate(ref, input_ids, 24, do_sample=False)
    native = bench_generate.native_generate(
        model, input_ids, 24, eos_token_id=None, do_sample=False, attention_mask=torch.ones_like(input_ids)
    )
    ours = bench_generate.hf_generate(model, input_ids, 24)
    assert theirs.shape == (2, input_ids.shape[1] + 24)
    assert torch.equal(native, theirs) and torch.equal(ours, theirs)
    assert len(set(theirs[0, input_ids.shape[1] :].tolist())) > 1  # not one token repeated: the weights decode
