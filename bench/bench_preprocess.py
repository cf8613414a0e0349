"""Preprocessing benchmark: minimind-hf's cached, batched SFT tokenization vs MiniMind's per-item SFTDataset.

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/bench_preprocess.py

Data: bench/synth_sft.py (sft_512-like: < 512 characters, 1-3 exchanges, mostly Chinese), max_length 340, MiniMind's
augmentations on for both sides (system prompt 0.2, empty think 0.2). Each figure is the best of ``--repeats`` runs,
interleaved, because the machine may be shared. Rates are samples per second of wall time, and per second of CPU time
(all threads of the process), which load from other processes distorts less.

* MiniMind per-item: ``NativeSFTDataset.__getitem__`` over the samples (render, tokenize, pad, token scan), with
  TOKENIZERS_PARALLELISM=false as MiniMind sets it. It repeats this work every epoch.
* ours, tokenizer pool off: the batched twin that ``datasets.map`` runs (`encode_conversations`) with
  TOKENIZERS_PARALLELISM=false: Python renders on the main thread while one helper thread tokenizes (Rust, no GIL).
* ours, tokenizer pool on: the same with the tokenizer's own thread pool (the tokenizers default).
* ours, load_sft_dataset: end to end on a cold cache (read + validate + tokenize + mask + write Arrow), one process.
* cached rerun: `load_sft_dataset` again on the same ``--cache-n``-conversation file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import datasets  # noqa: E402
import tokenizers  # noqa: E402
import transformers  # noqa: E402
from native_sft_dataset import NativeSFTDataset  # noqa: E402
from reference_dir import REFERENCE  # noqa: E402
from synth_sft import generate  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from minimind_hf.data import load_sft_dataset  # noqa: E402
from minimind_hf.masking import SFTOptions, encode_conversations  # noqa: E402


def timed(fn):
    """(wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def set_tokenizer_threads(on: bool) -> None:
    # The tokenizers library reads this variable on every parallel call.
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if on else "false"


def bench_tokenizer(name: str, path: str, n: int, max_length: int, repeats: int, workdir: Path) -> dict:
    tokenizer = AutoTokenizer.from_pretrained(REFERENCE / f"{name}-tokenizer")
    native = NativeSFTDataset(path, tokenizer, max_length=max_length, cache_dir=str(workdir / "native-cache"))
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for _, line in zip(range(n), f, strict=False)]
    conversations = [(r["conversations"], None, json.dumps(r, ensure_ascii=False)) for r in records]
    opts = SFTOptions(max_length=max_length)

    def run_native():
        for index in range(n):
            native[index]

    def run_ours():
        for start in range(0, n, 1000):  # datasets.map's batch size
            encode_conversations(conversations[start : start + 1000], tokenizer, opts)

    set_tokenizer_threads(False)
    run_native() if n <= 500 else [native[i] for i in range(500)]  # warm up both sides
    encode_conversations(conversations[:500], tokenizer, opts)
    best = {}
    for _ in range(repeats):
        for label, fn, threads in [
            ("native", run_native, False),
            ("ours_1t", run_ours, False),
            ("ours", run_ours, True),
        ]:
            set_tokenizer_threads(threads)
            wall, cpu = timed(fn)
            old = best.get(label, (0.0, 0.0))
            best[label] = (max(old[0], n / wall), max(old[1], n / cpu))
    set_tokenizer_threads(True)
    e2e = []
    for i in range(repeats):
        cache = workdir / f"e2e-{name}-{i}"
        e2e.append(
            timed(lambda cache=cache: load_sft_dataset(path, tokenizer, max_length=max_length, cache_dir=str(cache)))
        )
        shutil.rmtree(cache, ignore_errors=True)
    best["load"] = (n / min(w for w, _ in e2e), n / min(c for _, c in e2e))
    return best


def bench_cache(path: str, max_length: int, workdir: Path) -> tuple[float, float]:
    tokenizer = AutoTokenizer.from_pretrained(REFERENCE / "minimind2-tokenizer")
    cache = str(workdir / "cache-100k")
    cold, _ = timed(lambda: load_sft_dataset(path, tokenizer, max_length=max_length, cache_dir=cache))
    warm, _ = timed(lambda: load_sft_dataset(path, tokenizer, max_length=max_length, cache_dir=cache))
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="conversations for the throughput runs")
    parser.add_argument("--cache-n", type=int, default=100000, help="conversations for the cached-rerun run")
    parser.add_argument("--max-length", type=int, default=340)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokenizers", default="minimind2,minimind3")
    args = parser.parse_args()
    datasets.disable_progress_bars()
    workdir = Path(tempfile.mkdtemp(prefix="bench-preprocess-"))
    try:
        data = generate(str(workdir / "sft.jsonl"), args.n, seed=0)
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
        )
        print(f"python {platform.python_version()}, transformers {transformers.__version__}, datasets "
              f"{datasets.__version__}, tokenizers {tokenizers.__version__}")  # fmt: skip
        print(
            f"\n{args.n} conversations, max_length {args.max_length}, best of {args.repeats}; samples/s wall (CPU)\n"
        )
        print(
            "| tokenizer | MiniMind per-item | ours, tokenizer pool off | ours, tokenizer pool on | load_sft_dataset cold |"
        )
        print("|---|---|---|---|---|")
        for name in args.tokenizers.split(","):
            r = bench_tokenizer(name, data, args.n, args.max_length, args.repeats, workdir)
            base_wall, base_cpu = r["native"]
            cells = [f"{r['native'][0]:,.0f} ({base_cpu:,.0f})"]
            for key in ("ours_1t", "ours", "load"):
                wall, cpu = r[key]
                cells.append(f"{wall:,.0f} ({cpu:,.0f}) = {wall / base_wall:.1f}x ({cpu / base_cpu:.1f}x)")
            print(f"| {name} | " + " | ".join(cells) + " |")
        big = generate(str(workdir / "sft-big.jsonl"), args.cache_n, seed=1)
        cold, warm = bench_cache(big, args.max_length, workdir)
        print(
            f"\n{args.cache_n} conversations, minimind2: first load_sft_dataset {cold:.1f} s, cached rerun {warm:.2f} s"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
