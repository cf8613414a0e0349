"""Training benchmark: MiniMind's native loop vs minimind-hf on `transformers.Trainer` vs TRL's `SFTTrainer`.

    .venv/bin/python bench/bench_train.py                                   # minimind2-small, default variants
    .venv/bin/python bench/bench_train.py --presets minimind2-small,minimind-3 --variants native,ours --steps 20
    .venv/bin/python bench/bench_train.py --data dataset/sft_512.jsonl      # a real MiniMind jsonl instead

Every run sees the same ``(warmup + steps) * batch_size`` conversations once (one epoch), from the same initial
weights, in its own subprocess (so peak RSS is per run). Runs are interleaved, variant by variant, and with
``--repeats`` > 1 each figure is the best of its repeats (``--parity-repeats`` runs the variants of the
identical-work comparison, native, native_step0 and ours_fp32_fixed, more often). A step is timed from the end of the previous step to the end
of this one (data loading, forward, backward, clipping, optimizer step), after ``--warmup`` untimed steps.

* native: bench/native_loop.py on bench/native_sft_dataset.py — MiniMind's own path, fp32 on CPU.
* ours*: the product path — `minimind_hf.arguments.parse_args` on ``--config`` (the recipe's YAML) plus the workload
  overrides below, `load_sft_dataset`, `build_collator`, `build_trainer`, as recipes/sft.py does. ``ours`` keeps
  the YAML's speed settings (precision, packing, sampler, optimizer, compile); the other ``ours_*`` variants set them.
* trl: `trl.SFTTrainer` on the same model object and the same tokenized dataset (input_ids + labels).

Held-out loss: mean cross-entropy over the supervised tokens of ``--eval-n`` other conversations, fp32, after training.

This file prepares the data and initial weights and runs every (preset, variant) in its own process; the variants are in
train_variants.py, one run in train_runs.py (measured by step_meter.py), the tables in train_report.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from reference_dir import REFERENCE  # noqa: E402

from minimind_hf.hardware import bf16_supported  # noqa: E402

DEFAULT_CONFIG = ROOT / "configs" / "sft_tiny_cpu.yaml"
TOKENIZER_OF = {"minimind2": "minimind2-tokenizer", "minimind-3": "minimind3-tokenizer"}
RESULT_TAG = "BENCH_RESULT "

from train_report import all_checks, device_peak_tflops, format_train_tables  # noqa: E402
from train_variants import CPU_DEFAULT, CPU_SWEEP, GPU_DEFAULT, PARITY_VARIANTS, VARIANTS  # noqa: E402

# --------------------------------------------------------------------------------------------------- orchestration


def tokenizer_dir(preset: str) -> Path:
    return REFERENCE / TOKENIZER_OF["minimind2" if preset.startswith("minimind2") else "minimind-3"]


def prepare(workdir: Path, args) -> dict:
    """Data files and, per preset, one set of initial weights (with its tokenizer) shared by every run."""
    import torch
    from synth_sft import generate
    from transformers import AutoTokenizer

    from minimind_hf import MiniMindConfig, MiniMindForCausalLM

    paths = {}
    n_train = max(args.total_steps(p) for p in args.preset_list) * args.batch_size
    if args.data:
        with open(args.data, encoding="utf-8") as f:
            lines = list(islice(f, n_train + args.eval_n))
        if len(lines) < n_train + args.eval_n:
            raise SystemExit(f"{args.data} has {len(lines)} lines; need {n_train + args.eval_n}")
        (workdir / "train.jsonl").write_text("".join(lines[:n_train]), encoding="utf-8")
        (workdir / "eval.jsonl").write_text("".join(lines[n_train:]), encoding="utf-8")
    else:
        generate(str(workdir / "train.jsonl"), n_train, seed=args.seed, max_chars=args.synth_chars)
        generate(str(workdir / "eval.jsonl"), args.eval_n, seed=args.seed + 1, max_chars=args.synth_chars)
    paths["eval"] = str(workdir / "eval.jsonl")
    for preset in args.preset_list:
        n = args.total_steps(preset) * args.batch_size
        path = workdir / f"train-{n}.jsonl"
        if not path.exists():
            with open(workdir / "train.jsonl", encoding="utf-8") as f:
                path.write_text("".join(islice(f, n)), encoding="utf-8")
        paths[f"train/{preset}"] = str(path)
        init_dir = workdir / f"init-{preset}"
        torch.manual_seed(args.seed)
        model = MiniMindForCausalLM(MiniMindConfig.from_preset(preset))
        model.save_pretrained(init_dir)
        AutoTokenizer.from_pretrained(tokenizer_dir(preset)).save_pretrained(init_dir)
        paths[f"init/{preset}"] = str(init_dir)
    return paths


def single_run_spec(
    workdir: str,
    preset: str,
    variant: str,
    batch_size: int,
    max_length: int,
    warmup: int,
    steps: int,
    data=None,
    seed: int = 42,
) -> dict:
    """One CPU run's spec, its data and initial weights prepared in ``workdir``: for the scripts that measure a single
    recipe run in their own process (profile_step.py, bench_compile.py)."""
    args = SimpleNamespace(
        preset_list=[preset],
        batch_size=batch_size,
        data=data,
        eval_n=0,
        seed=seed,
        synth_chars=500,
        total_steps=lambda p: warmup + steps,
    )
    paths = prepare(Path(workdir), args)
    return {
        "preset": preset,
        "variant": variant,
        "device": "cpu",
        "init_dir": paths[f"init/{preset}"],
        "train_path": paths[f"train/{preset}"],
        "workdir": workdir,
        "config": str(DEFAULT_CONFIG),
        "max_length": max_length,
        "batch_size": batch_size,
        "warmup": warmup,
        "total_steps": warmup + steps,
        "learning_rate": 5e-4,
        "seed": seed,
        "num_workers": 0,
    }


def run_one(spec: dict, log_path: Path) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault("HF_HOME", str(ROOT / ".cache" / "huggingface"))
    if spec.get("threads"):
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(spec["threads"])
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    tail = log_path.read_text()[-3000:]
    return {**spec, "error": f"exit {proc.returncode}: {tail}"}


def run_train_bench(args, log=print) -> list[dict]:
    """All (preset, variant) runs, interleaved; best of ``--repeats`` per run. Returns one dict per run."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        return _run_all(workdir, args, log)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _run_all(workdir: Path, args, log) -> list[dict]:
    import torch

    cuda = torch.cuda.is_available() and not args.cpu
    paths = prepare(workdir, args)
    flash = _flash_attn_available() if cuda else False
    best: dict[tuple, dict] = {}
    for preset in args.preset_list:
        variants = args.variant_list(cuda, preset)
        for repeat in range(max(args.repeats, args.parity_repeats)):
            for variant in variants:
                if repeat >= args.repeats and variant not in PARITY_VARIANTS:
                    continue
                spec = {
                    "preset": preset, "variant": variant, "device": "cuda" if cuda else "cpu",
                    "init_dir": paths[f"init/{preset}"], "train_path": paths[f"train/{preset}"],
                    "eval_path": paths["eval"], "workdir": str(workdir), "config": str(args.config),
                    "max_length": args.max_length, "batch_size": args.batch_size, "warmup": args.warmup_for(preset),
                    "total_steps": args.total_steps(preset), "learning_rate": args.learning_rate, "seed": args.seed,
                    "num_workers": args.num_workers, "flash_attn": flash, "threads": args.threads,
                    "native_ref": args.native_ref,
                }  # fmt: skip
                started = time.perf_counter()
                result = run_one(spec, workdir / f"{preset}-{variant}-{repeat}.log")
                result["wall_s"] = time.perf_counter() - started
                if "error" in result:
                    log(f"  {preset} {variant}: FAILED\n{result['error']}")
                else:
                    log(
                        f"  {preset} {variant}: {result['real_tok_s']:,.0f} real tok/s, {result['s_per_step']:.2f} s/step,"
                        f" held-out loss {result['heldout_loss']:.4f}, load {result['load_avg']:.1f} ({result['wall_s']:.0f} s)"
                    )
                key = (preset, variant)
                old = best.get(key)
                if (
                    old is None
                    or "error" in old
                    or ("error" not in result and result["real_tok_s"] > old["real_tok_s"])
                ):
                    best[key] = result
    return list(best.values())


def _flash_attn_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("flash_attn") is not None


def padding_at_scale(preset: str, batch_size: int, max_length: int, n: int = 4000, seed: int = 0, data=None) -> dict:
    """Padding share of each batching scheme over ``n`` conversations, with the megabatches group_by_length uses in
    a full epoch (50 batches; a short benchmark run only has a few, so it pads more than real training would)."""
    import numpy as np
    import torch
    from synth_sft import generate
    from transformers import AutoTokenizer
    from transformers.trainer_pt_utils import get_length_grouped_indices

    from minimind_hf.data import load_sft_dataset

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir(preset))
    with tempfile.TemporaryDirectory() as tmp:
        path = data or generate(f"{tmp}/sft.jsonl", n, seed=seed)
        dataset = load_sft_dataset(path, tokenizer, max_length=max_length, cache_dir=f"{tmp}/cache")
        lengths = np.asarray(dataset["length"])[:n]
    real = lengths.sum()

    def padded(order):
        batches = [lengths[order[i : i + batch_size]] for i in range(0, len(order), batch_size)]
        return 1 - real / sum(b.max() * len(b) for b in batches)

    generator = torch.Generator().manual_seed(seed)
    grouped = get_length_grouped_indices(lengths.tolist(), batch_size, generator=generator)
    return {
        "n": len(lengths),
        "mean_length": float(lengths.mean()),
        "max_length": 1 - real / (len(lengths) * max_length),
        "longest": padded(torch.randperm(len(lengths), generator=generator).numpy()),
        "group_by_length": padded(np.asarray(grouped)),
    }


# --------------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--presets", default="minimind2-small", help="comma-separated MiniMind presets")
    parser.add_argument("--variants", default=None, help=f"comma-separated; known: {', '.join(VARIANTS)}")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help=f"add the CPU sweep (its bf16 runs only on a CPU with native bf16): {CPU_SWEEP}",
    )
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    parser.add_argument("--big-steps", type=int, default=None, help="timed steps for minimind-3 (default: --steps)")
    parser.add_argument(
        "--moe-steps", type=int, default=None, help="timed steps for MoE presets (default: --big-steps)"
    )
    parser.add_argument(
        "--big-variants", default=None, help="variants for presets other than minimind2-* (default: --variants)"
    )
    parser.add_argument("--moe-variants", default=None, help="variants for MoE presets (default: --big-variants)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=340)
    parser.add_argument("--learning-rate", type=float, default=5e-4, help="high, so the loss moves from random init")
    parser.add_argument(
        "--synth-chars", type=int, default=500, help="synthetic conversations' length cap (1000: sft_1024-like)"
    )
    parser.add_argument("--data", default=None, help="a MiniMind SFT jsonl instead of the synthetic conversations")
    parser.add_argument("--eval-n", type=int, default=64, help="held-out conversations for the loss comparison")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="the recipe YAML the `ours` runs start from")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers, both sides")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per run (default: all cores)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per variant; the fastest is reported")
    parser.add_argument(
        "--parity-repeats", type=int, default=1, help=f"runs of {', '.join(PARITY_VARIANTS)} (at least --repeats)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cpu", action="store_true", help="stay on CPU even with a GPU")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (data, logs) for inspection")
    parser.add_argument(
        "--native-ref", default=None, metavar="PATH",
        help="a MiniMind checkout: add the run `native_ref`, MiniMind's own train_full_sft loop, SFTDataset and model",
    )  # fmt: skip
    parser.add_argument("--peak-tflops", type=float, default=None, help="device bf16 peak for MFU")


def finalize(args) -> None:
    args.preset_list = args.presets.split(",")
    if args.native_ref:
        from native_ref import check_checkout

        args.native_ref = str(check_checkout(args.native_ref))

    def timed_steps(preset):
        if getattr(args, "moe_steps", None) and "moe" in preset:
            return args.moe_steps
        return args.big_steps if args.big_steps and not preset.startswith("minimind2") else args.steps

    args.warmup_for = lambda preset: args.warmup
    args.total_steps = lambda preset: args.warmup + timed_steps(preset)

    def variant_list(cuda, preset="minimind2-small"):
        names = (args.variants or (GPU_DEFAULT if cuda else CPU_DEFAULT)).split(",")
        if "moe" in preset and args.moe_variants:
            names = args.moe_variants.split(",")
        elif not preset.startswith("minimind2") and args.big_variants:
            names = args.big_variants.split(",")
        elif args.sweep:
            sweep = [v for v in CPU_SWEEP.split(",") if v not in names]
            # emulated bf16 runs ~50× slower than fp32 (686 s/step for minimind-3-moe on an AVX2 CPU): not a setting
            if not cuda and not bf16_supported(use_cpu=True):
                emulated = [v for v in sweep if VARIANTS[v]["args"].get("bf16")]
                print(f"  sweep: skipping {', '.join(emulated)}: this CPU has no native bf16 (AMX / AVX512-BF16)")
                sweep = [v for v in sweep if v not in emulated]
            names += sweep
        # MiniMind's current code is minimind-3; its 2.x architecture (no q/k norm) needs an older checkout
        if args.native_ref and "native_ref" not in names and not preset.startswith("minimind2"):
            names.insert(names.index("native") + 1 if "native" in names else 0, "native_ref")
        unknown = [v for v in names if v not in VARIANTS]
        if unknown:
            raise SystemExit(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
        return names

    args.variant_list = variant_list


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        from train_runs import worker

        result = worker(json.loads(sys.argv[2]))
        print(RESULT_TAG + json.dumps(result), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args()
    finalize(args)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    results = run_train_bench(args)
    print()
    peak = device_peak_tflops(args.peak_tflops)
    print(format_train_tables(results, peak))
    for what, met, figure in all_checks(results, peak):
        print(f"- {'–' if met is None else 'met' if met else 'NOT met'}: {what}: {figure}")


if __name__ == "__main__":
    main()
