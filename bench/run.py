"""`make bench`: run every benchmark (preprocessing, training, generation) and rewrite docs/benchmarks.md.

    .venv/bin/python bench/run.py --out docs/benchmarks.md            # ~35-40 min on 2 idle CPU cores
    .venv/bin/python bench/run.py --out docs/benchmarks.md --quick    # ~10 min: fewer steps, variants, repeats
    .venv/bin/python bench/run.py --out docs/benchmarks.md --sweep    # + the CPU speed-settings sweep

The same command runs on a GPU machine (minimind-3 in bf16, flash-attention varlen packing when flash_attn is
installed, MFU from a table of device peaks or ``--peak-tflops``). All ratios compare runs made in this one
invocation, so they hold on a noisy machine better than the absolute figures do.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import platform
import shlex
import subprocess
import sys
import time
from contextlib import redirect_stdout
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_compile  # noqa: E402
import bench_generate  # noqa: E402
import bench_moe  # noqa: E402
import bench_packed_attention  # noqa: E402
import bench_preprocess  # noqa: E402
import bench_train  # noqa: E402
import train_report  # noqa: E402
import train_variants  # noqa: E402

PACKAGES = ("torch", "transformers", "accelerate", "datasets", "tokenizers", "trl", "peft", "flash-attn")


def machine() -> list[str]:
    import torch

    info = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        info = {k.strip(): v.strip() for k, v in info.items()}
    except (OSError, subprocess.CalledProcessError):
        pass
    flags = set(info.get("Flags", "").split())
    cpu = info.get("Model name", platform.processor() or platform.machine())
    extensions = [f for f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    lines = [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores ({info.get('Thread(s) per core', '?')} thread(s) per core), "
        f"{', '.join(extensions) or 'no AVX-512 / AMX'}",
        f"- torch threads: {torch.get_num_threads()}",
    ]
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        lines.append(f"- RAM: {kib / 2**20:.0f} GiB")
    except (OSError, ValueError, IndexError):
        pass
    if torch.cuda.is_available():
        lines.append(f"- GPU: {torch.cuda.get_device_name(0)} × {torch.cuda.device_count()}")
    else:
        lines.append("- GPU: none")
    return lines


def versions() -> str:
    found = [f"Python {platform.python_version()}"]
    for name in PACKAGES:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


def run_preprocess(argv: list[str]) -> str:
    """bench_preprocess.main's report (it prints markdown), run in this process with ``argv``."""
    saved, buffer = sys.argv, io.StringIO()
    sys.argv = ["bench/bench_preprocess.py", *argv]
    try:
        with redirect_stdout(buffer):
            bench_preprocess.main()
    finally:
        sys.argv = saved
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    return buffer.getvalue().strip()


def long_args(args):
    """The longer-samples row: minimind2-small, native against ours, at ``--long-max-length`` on sft_1024-like
    synthetic conversations (twice the characters of the sft_512-like ones), or ``--data`` as given."""
    import copy

    long = copy.copy(args)
    long.presets, long.variants, long.max_length, long.synth_chars = (
        "minimind2-small",
        "native,ours",
        args.long_max_length,
        1000,
    )
    long.steps, long.repeats, long.parity_repeats, long.native_ref, long.sweep = args.long_steps, 1, 1, None, False
    bench_train.finalize(long)
    return long


def run_profile(args) -> str:
    """bench/profile_step.py's report on the recommended config, in its own process (the profiler stays out of this
    one)."""
    argv = [
        "--preset",
        args.preset_list[0],
        "--batch-size",
        str(args.batch_size),
        "--max-length",
        str(args.max_length),
    ]
    argv += ["--steps", "2" if args.quick else "3"] + (["--data", args.data] if args.data else [])
    proc = subprocess.run(
        [sys.executable, str(HERE / "profile_step.py"), *argv], capture_output=True, text=True, cwd=HERE.parent
    )
    if proc.returncode:
        return f"profile_step.py failed (exit {proc.returncode}):\n\n```\n{proc.stderr[-2000:]}\n```"
    report = proc.stdout[proc.stdout.index(args.preset_list[0] + ", batch") :]
    return f"`.venv/bin/python bench/profile_step.py {' '.join(argv)}`:\n\n{report.strip()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/benchmarks.md")
    parser.add_argument("--quick", action="store_true", help="a ~10 minute run: fewer steps, variants and repeats")
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated sections to skip: preprocess,train,long,profile,attention,compile,generate,moe",
    )
    parser.add_argument(
        "--preprocess-args", default=None, help="arguments for bench_preprocess.py (default depends on --quick)"
    )
    parser.add_argument("--gen-presets", default=None, help="generation presets (default: the training presets)")
    bench_train.add_arguments(parser)
    parser.set_defaults(
        presets="minimind2-small,minimind-3,minimind-3-moe",
        big_steps=6,
        moe_steps=3,
        big_variants="native,ours",
        # the MoE loss targets compare against native_step0: native keeps MiniMind's get_lr step offset;
        # ours_fp32_fixed pads and computes as MiniMind's CPU loop does, so its router statistics see the same tokens
        # (the aux-loss check); native_step0_order43 measures how far another batch order alone moves that loss
        moe_variants="native,native_step0,native_step0_order43,ours_fp32_fixed,ours",
        parity_repeats=2,
    )
    parser.add_argument("--long-max-length", type=int, default=1024, help="the longer-samples row's max_length")
    parser.add_argument("--long-steps", type=int, default=3, help="timed steps of the longer-samples row")
    args = parser.parse_args()
    if args.quick:
        quick = {"steps": 8, "big_steps": 3, "warmup": 1, "repeats": 1, "parity_repeats": 1, "sweep": False,
                 "long_steps": 2, "moe_steps": 2}  # fmt: skip
        for key, value in quick.items():
            if parser.get_default(key) == getattr(args, key):
                setattr(args, key, value)
    bench_train.finalize(args)
    skip = set(filter(None, args.skip.split(",")))
    preprocess_argv = shlex.split(
        args.preprocess_args
        or ("--n 2000 --cache-n 10000 --repeats 1" if args.quick else "--n 5000 --cache-n 100000 --repeats 2")
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"

    started, load_start = time.perf_counter(), os.getloadavg()[0]
    command = "$(PY) bench/run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"bench: {command}", flush=True)
    sections = {}
    if "preprocess" not in skip:
        print("preprocessing ...", flush=True)
        sections["preprocess"] = run_preprocess(preprocess_argv)
    train_results, padding = [], None
    if "train" not in skip:
        print("training ...", flush=True)
        train_results = bench_train.run_train_bench(args, log=lambda s: print(s, flush=True))
        padding = bench_train.padding_at_scale(args.preset_list[0], args.batch_size, args.max_length, data=args.data)
    long_results = []
    if "long" not in skip:
        print(f"training at max_length {args.long_max_length} ...", flush=True)
        long_results = bench_train.run_train_bench(long_args(args), log=lambda s: print(s, flush=True))
    if "profile" not in skip:
        print("profiling a training step ...", flush=True)
        sections["profile"] = run_profile(args)
    if "attention" not in skip and args.sweep:
        print("packed attention: flash kernel against eager per sample ...", flush=True)
        sections["attention"] = bench_packed_attention.run(
            args.preset_list[0], rounds=3 if args.quick else 7, log=lambda s: print(s, flush=True)
        )
    if "compile" not in skip and args.sweep:
        print("torch.compile: compile time against the steady-state gain ...", flush=True)
        sections["compile"] = bench_compile.run(
            args.preset_list[0], args.batch_size, args.max_length, rounds=6 if args.quick else 12, data=args.data
        )
    gen_results = []
    if "generate" not in skip:
        print("generation ...", flush=True)
        gen_presets = (args.gen_presets or ",".join(p for p in args.preset_list if "moe" not in p)).split(",")
        gen_results = bench_generate.run_generate_bench(
            gen_presets,
            new_tokens=64 if args.quick else 128,
            batch_sizes=(1, 8),
            repeats=1 if args.quick else 7,
            log=lambda s: print(s, flush=True),
            native_ref=args.native_ref,
        )
    if "moe" not in skip and args.sweep:  # the minimind-3-moe training row measures the dispatch end to end
        print("MoE dispatch ...", flush=True)
        rounds, steps = (2, 2) if args.quick else (4, 2)  # even: each order as often
        sections["moe"] = bench_moe.run("minimind-3-moe", 4, 256, rounds, steps, log=lambda s: print(s, flush=True))
    peak = train_report.device_peak_tflops(args.peak_tflops)
    elapsed = time.perf_counter() - started

    doc = render(args, command, sections, train_results, padding, gen_results, peak, elapsed, load_start, long_results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(doc, encoding="utf-8")
    print(f"wrote {args.out} in {elapsed / 60:.1f} min", flush=True)


def render(args, command, sections, train_results, padding, gen_results, peak, elapsed, load_start, long_results=()):
    today = datetime.date.today().isoformat()
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` on {today} in {elapsed / 60:.1f} min:",
        "",
        "```bash",
        command.replace("$(PY)", ".venv/bin/python"),
        "```",
        "",
        "## Machine",
        "",
        *machine(),
        f"- Load average (1 min) at start / end: {load_start:.1f} / {os.getloadavg()[0]:.1f} — other processes share "
        "the cores, so compare ratios within this file rather than absolute rates across runs.",
        f"- {versions()}",
        "",
    ]
    checks = train_report.all_checks(train_results, peak)
    gen_checks = generation_checks(gen_results)
    if checks or gen_checks:
        lines += ["## Targets (minimind2-small, batch 16, max_length 340; ratios to the native loop in this run)", ""]
        lines += ["| target | result | met |", "|---|---|---|"]
        for what, met, figure in checks + gen_checks:
            lines.append(f"| {what} | {figure} | {'–' if met is None else 'yes' if met else '**no**'} |")
        lines.append("")
    if "preprocess" in sections:
        lines += [
            "## Preprocessing",
            "",
            "`bench/bench_preprocess.py` (MiniMind's per-item SFTDataset vs `load_sft_dataset`):",
            "",
            sections["preprocess"],
            "",
        ]
    if train_results:
        lines += [
            "## Training",
            "",
            "Real tokens are the non-padding input tokens, supervised tokens those that carry loss. `native` is "
            "MiniMind's train_full_sft.py loop and per-item SFTDataset (bench/native_loop.py, "
            "bench/native_sft_dataset.py); `ours*` go through the recipe's path — `parse_args` on "
            f"`{Path(args.config).relative_to(HERE.parent) if Path(args.config).is_relative_to(HERE.parent) else args.config}`"
            " plus the workload below, `load_sft_dataset`, `build_collator`, `build_trainer` (`transformers.Trainer`); `trl` is "
            "`trl.SFTTrainer` on the same model and tokenized rows. Both sides run the same model code; `native` "
            "calls it with `skip_logits=False`, so that, like MiniMind's model, it projects every position through "
            "the LM head, while ours project only the supervised positions (the loss is the same). Every run starts from the same random-init "
            f"weights and sees the same conversations once, learning rate {args.learning_rate:g} (cosine to 10%, no "
            "warm-up, clip 1.0, AdamW weight decay 0.01). Held-out loss: fp32 cross-entropy over the supervised tokens "
            f"of {args.eval_n} other conversations after training. `native_step0` is the native loop with one change: "
            "MiniMind's get_lr counts steps from 1, so every update uses the rate one step further down the cosine "
            "than Trainer's (on these short runs ~8-15% less learning rate on average); started at step 0 it "
            "reaches the same loss as ours, which is why the loss target compares against it. Peak memory is the "
            "run's peak RSS on CPU "
            "(`max_memory_allocated` on GPU). Each run is its own process"
            + (f"; best of {args.repeats}" if args.repeats > 1 else "")
            + (
                f"; {', '.join(f'`{v}`' for v in train_variants.PARITY_VARIANTS)}: best of {args.parity_repeats}, as "
                "they do the same work and differ by less than this machine's run-to-run noise."
                if args.parity_repeats > max(args.repeats, 1)
                else "."
            ),
            "",
            train_report.format_train_tables(train_results, peak),
            "",
        ]
    if padding:
        lines += [
            f"Padding at full scale ({padding['n']} conversations, mean {padding['mean_length']:.0f} tokens, batch "
            f"{args.batch_size}): pad to max_length {padding['max_length']:.1%}, pad to the longest in a random batch "
            f"{padding['longest']:.1%}, group_by_length {padding['group_by_length']:.1%}. `group_by_length` sorts "
            "within megabatches of min(samples / (4 · batch), 50) batches; the short runs above have only a few, so "
            "they pad more than a real epoch does and understate its speed.",
            "",
        ]
    if "profile" in sections:
        lines += [
            "## Where a training step goes",
            "",
            "torch.profiler over Trainer steps of the recommended config (bench/profile_step.py): each op's self time, "
            "by what it is and which module ran it (forward hooks mark the modules; backward ops take the scope of "
            'the forward op that made them). "Python between ops" is the step\'s wall time outside every profiled '
            "op. The profiler slows small ops, so read shares.",
            "",
            sections["profile"],
            "",
        ]
    if "attention" in sections:
        lines += [
            "## Packed attention on CPU: flash kernel or eager, per sample",
            "",
            "`sdpa_packed` attends within each packed sample. Per sample it calls torch's SDPA (on CPU its flash "
            "kernel) or, for samples up to `EAGER_MAX_LENGTH` tokens in half precision on CPU, the model's eager "
            "attention. One layer's forward and backward over one packed row, inputs in the dtypes Trainer's bf16 "
            "autocast hands over, with the eager path off (`flash`), on for every sample (`eager`) and as shipped "
            "(bench/bench_packed_attention.py); then the whole model on the sft_512-like row, flash against "
            "shipped, alternating step by step.",
            "",
            sections["attention"],
            "",
        ]
    if "compile" in sections:
        lines += [
            "## torch.compile: when it pays",
            "",
            "The recommended config eager and under `torch.compile` (Trainer's `torch_compile`), two copies of the same "
            "weights on the same packed batches, one step of each per round in alternating order (bench/bench_compile.py). "
            "The compile cost is the compiled copy's first steps minus the eager copy's.",
            "",
            sections["compile"],
            "",
        ]
    if long_results:
        lines += [
            f"## Longer samples (max_length {args.long_max_length})",
            "",
            "How cost grows with length: minimind2-small on sft_1024-like synthetic conversations (up to 1000 characters, "
            f"answers up to twice as long as above), native against the recommended config, {args.long_steps} timed "
            "steps each, same weights, data and settings as the training runs above otherwise. Peak memory is each "
            "run's peak RSS.",
            "",
            train_report.format_train_tables(long_results, peak),
            "",
        ]
    if gen_results:
        rounds = len(gen_results[0]["times"])
        lines += [
            "## Generation",
            "",
            "`model.generate` (transformers' GenerationMixin, DynamicCache) vs MiniMind's generate loop re-implemented "
            "on the same model, fed the attention mask as MiniMind's eval_llm.py feeds its generate "
            "(bench/bench_generate.py). The native loop decodes in fp32, as MiniMind does on CPU; the fp32 runs of "
            "ours compare the decoding machinery alone (same forward, same dtype), the `minimind_hf.chat` runs decode "
            "as the chat CLI does, in the dtype it picks (`decoding_model`: on a CPU with native bf16, whichever of bf16 "
            "and fp32 decodes faster there, timed at load). Our sampling runs sample as the chat CLI does, through "
            "`minimind_hf.generation.FusedSamplingWarper` (the tokens transformers' temperature, top-k and top-p "
            "warpers keep, in one processor); the fp32 run with transformers' own warpers is a bare "
            "`model.generate(do_sample=True, ...)`. "
            "With `--native-ref`, MiniMind's own generate and model from the checkout decode the same weights "
            f"(minimind-3; its × column is against the native loop). Rates are the median of {rounds} rounds, each "
            "running every run once (in reverse order every other round); × is the median over the rounds of the two "
            "runs' time ratio in the same round, which cancels most of the host's drift (at batch 1 each step reads "
            "every weight from memory, and other tenants' memory traffic moves the rate by ±10%).",
            "",
            bench_generate.format_generate_table(gen_results),
            "",
        ]
    if "moe" in sections:
        lines += [
            "## MoE expert dispatch",
            "",
            "minimind-3-moe training forward+backward on one fixed batch with MiniMind's expert dispatch "
            "(re-implemented: a boolean-mask gather/scatter per expert), this repository's previous per-expert loop, "
            "and ours (one sort per layer, contiguous expert slices, one host sync per layer instead of one per "
            "expert); the rest of the model is the same (bench/bench_moe.py).",
            "",
            sections["moe"],
            "",
        ]
    lines += [
        "## Reproducing",
        "",
        "- `make bench` rewrites this file (~35-40 min on 2 idle cores); `.venv/bin/python bench/run.py --out "
        "docs/benchmarks.md --quick` is a ~10 minute pass, `--sweep` adds the CPU speed-settings sweep, `--data "
        "path/to/sft_512.jsonl` uses real MiniMind data, `--repeats 2` reports the best of two runs each.",
        "- One part at a time: `bench/bench_train.py`, `bench/profile_step.py`, `bench/bench_compile.py`, "
        "`bench/bench_generate.py`, `bench/bench_preprocess.py`, `bench/bench_moe.py`, "
        "`bench/bench_packed_attention.py` (each has `--help`); `--native-ref PATH` adds MiniMind's own "
        "training code from a checkout as the run `native_ref` (bench/README.md).",
        "- On a GPU the same command trains minimind2-small and minimind-3 under bf16 (`native` uses MiniMind's "
        "autocast), adds `ours_fast_gpu` (packing, flash-attention varlen when `flash_attn` is installed) and reports "
        "MFU against the device's bf16 peak (`--peak-tflops` for devices not in the table).",
        "",
    ]
    return "\n".join(lines)


def generation_checks(results) -> list:
    """The target rows: minimind_hf.chat's path (its default dtype) ≥ 1.4× the native loop, and the same machinery in
    native's fp32, where both sides run the same forward, ≥ 1.0×."""
    checks = []
    by = {(r["preset"], r["batch_size"], r["run"]): r for r in results}
    for r in results:
        if r["preset"] != "minimind2-small" or not (r["run"].startswith("ours: minimind_hf.chat") or r["run"] in (
            bench_generate.GREEDY_INFERENCE, bench_generate.SAMPLING_INFERENCE
        )):  # fmt: skip
            continue
        ratio = bench_generate.speedup(r, by[(r["preset"], r["batch_size"], r["baseline"])])
        mode = "sampling" if "sampling" in r["run"] else "greedy"
        if r["run"].startswith("ours: minimind_hf.chat"):
            what = f"generation with cache ≥ 1.4× native loop (batch {r['batch_size']}, {mode}, minimind_hf.chat: {r['dtype']})"
            checks.append(((r["batch_size"], mode, 0), (what, ratio >= 1.4, f"{ratio:.2f}×")))
        else:
            what = "the same in native's fp32 (same forward, so the decoding machinery alone) ≥ 1.0×"
            checks.append(((r["batch_size"], mode, 1), (what, ratio >= 1.0, f"{ratio:.2f}×")))
    return [check for _, check in sorted(checks)] + native_ref_generation_checks(results)


def native_ref_generation_checks(results) -> list:
    """With `--native-ref`: the native loop decodes MiniMind's own generate's greedy tokens, at its speed (noise), and
    model.generate in the same dtype (fp32) is at least as fast as MiniMind's own generate."""
    by = {(r["preset"], r["batch_size"], r["run"]): r for r in results}
    ref_runs = (bench_generate.NATIVE_REF, bench_generate.NATIVE_REF_SAMPLING)
    # model.generate's fp32 run of the same mode, keyed by the native counterpart MiniMind's own run shares with it
    ours_of = {bench_generate.NATIVE: bench_generate.GREEDY_INFERENCE,
               bench_generate.NATIVE_SAMPLING: bench_generate.SAMPLING_INFERENCE}  # fmt: skip
    checks = []
    for preset in dict.fromkeys(r["preset"] for r in results if r["run"] in ref_runs):
        refs = [r for r in results if r["preset"] == preset and r["run"] in ref_runs]
        same = [r["same_greedy_tokens"] for r in refs if r["same_greedy_tokens"] is not None]
        what = f"{preset}: the bench's native generate loop = MiniMind's own generate (`--native-ref`): greedy tokens"
        checks.append((what, all(same), "identical" if all(same) else "DIFFERENT"))
        ratios = [bench_generate.speedup(by[(preset, r["batch_size"], r["baseline"])], r) for r in refs]
        what = f"{preset}: the same, tokens/s (native ÷ native_ref, batch 1 and 8, greedy and sampling; ~15% noise)"
        checks.append((what, all(abs(x - 1) <= 0.15 for x in ratios), f"{min(ratios):.2f}–{max(ratios):.2f}×"))
        for r in refs:
            ours = bench_generate.speedup(by[(preset, r["batch_size"], ours_of[r["baseline"]])], r)
            mode = "sampling" if r["baseline"] == bench_generate.NATIVE_SAMPLING else "greedy"
            what = f"{preset}: model.generate in fp32 ≥ 1.0× MiniMind's own generate (batch {r['batch_size']}, {mode})"
            checks.append((what, ours >= 1.0, f"{ours:.2f}×"))
    return checks


if __name__ == "__main__":
    main()
