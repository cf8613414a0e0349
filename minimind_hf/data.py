"""SFT datasets: load files or hub datasets, validate them, and tokenize + mask them into a cached `Dataset`.

    load_sft_dataset("data/sft.jsonl", tokenizer, max_length=340)         # -> Dataset(input_ids, labels, length)
    tokenize_conversation(messages, tokenizer)                              # -> {"input_ids", "labels"}

Reading and formats live in `minimind_hf.formats`, the masking of one conversation in `minimind_hf.masking`; this
module runs the masking through ``datasets.map`` (batched, ``num_proc``, progress bar) under explicit fingerprints,
so a rerun with the same files, tokenizer, template and options tokenizes nothing. `minimind-hf inspect`
(`minimind_hf.inspector`) shows what it produced.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass, field

import numpy as np

from . import formats, masking
from .fingerprints import code_fingerprint, hash_parts, tokenizer_fingerprint
from .formats import SKIP_INVALID_HINT, SFTDataError, iter_conversations
from .masking import (
    DEFAULT_EMPTY_THINK_RATIO,
    SYSTEM_PROMPTS,
    TRAIN_ON,
    SFTOptions,
    encode_conversations,
    tokenize_conversation,
)
from .sources import read_sources

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_EMPTY_THINK_RATIO",
    "SFTDataError",
    "SFTDataStats",
    "SYSTEM_PROMPTS",
    "TRAIN_ON",
    "load_sft_dataset",
    "tokenize_conversation",
]

KEPT, INVALID, NO_SUPERVISION = 0, 1, 2  # per-sample status column


@dataclass
class SFTDataStats:
    """What preprocessing did; lengths are in tokens after truncation, over the kept samples."""

    samples_in: int = 0
    invalid: int = 0
    dropped: int = 0
    kept: int = 0
    truncated: int = 0
    tokens: int = 0
    supervised_tokens: int = 0
    length_mean: float = 0.0
    length_p50: float = 0.0
    length_p90: float = 0.0
    length_p99: float = 0.0
    supervised_fraction: float = 0.0
    sources: dict = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"samples in {self.samples_in}, kept {self.kept}, dropped {self.dropped} (no supervised token left), "
            f"skipped {self.invalid} invalid, truncated {self.truncated}; length mean {self.length_mean:.1f}, "
            f"p50 {self.length_p50:.0f}, p90 {self.length_p90:.0f}, p99 {self.length_p99:.0f}; "
            f"supervised tokens {self.supervised_tokens}/{self.tokens} ({self.supervised_fraction:.1%})"
        )


def load_sft_dataset(
    dataset_name,
    tokenizer,
    *,
    max_length: int | None = None,
    train_on: str = "assistant",
    system_prompt_ratio: float = 0.2,
    empty_think_ratio: float = DEFAULT_EMPTY_THINK_RATIO,
    seed: int = 42,
    skip_invalid: bool = False,
    num_proc: int | None = None,
    system_prompts=SYSTEM_PROMPTS,
    cache_dir: str | None = None,
    return_stats: bool = False,
):
    """Load, validate, render, tokenize and mask SFT data into a cached ``Dataset(input_ids, labels, length)``.

    ``dataset_name``: a file (.jsonl/.json/.parquet), directory, glob or hub dataset (``owner/name``, or one file of
    it as ``owner/name/sft_512.jsonl`` or ``hf://datasets/owner/name/sft_512.jsonl``) — or a mixture:
    ``"a.jsonl:0.7,b/*.jsonl:0.3"``, a list of such strings, or a dict ``{source: ratio}``. A ratio is the fraction of that source's samples used (drawn
    with ``seed``; above 1 repeats the source). Samples keep file order; the Trainer's sampler shuffles.

    Bad records raise `SFTDataError` naming file and line, or with ``skip_invalid`` are skipped and counted.
    Samples whose supervised tokens are all cut by ``max_length`` are dropped. Both steps are cached by datasets'
    fingerprints: a rerun with the same files, tokenizer, template and options tokenizes nothing.
    Returns the dataset, or ``(dataset, SFTDataStats)`` with ``return_stats=True``.
    """
    opts = SFTOptions(max_length, train_on, system_prompt_ratio, empty_think_ratio, seed, tuple(system_prompts))
    raw, source_rows, raw_fingerprint = read_sources(
        dataset_name, iter_conversations, _raw_features(), seed=seed, skip_invalid=skip_invalid, cache_dir=cache_dir
    )
    code = code_fingerprint(formats, masking, sys.modules[__name__])  # the code that renders and masks rows
    fingerprint = hash_parts(raw_fingerprint, tokenizer_fingerprint(tokenizer), asdict(opts), skip_invalid, code)
    processed = raw.map(
        _tokenize_rows,
        batched=True,
        batch_size=1000,
        num_proc=num_proc,
        fn_kwargs={"tokenizer": tokenizer, "opts": opts, "skip_invalid": skip_invalid},
        remove_columns=raw.column_names,
        features=_processed_features(),
        new_fingerprint=fingerprint,
        desc="Tokenizing SFT conversations",
    )
    stats = _stats(processed, source_rows)
    logger.info("SFT data %s: %s", dataset_name, stats.summary())
    if stats.kept == 0:
        raise SFTDataError(f"{dataset_name}: no sample has a supervised token left ({stats.summary()})")
    status = np.asarray(processed.data.column("status"))
    if stats.kept < len(processed):
        keep = np.flatnonzero(status == KEPT)
        processed = processed.select(keep, new_fingerprint=hash_parts(fingerprint, "kept"))
    dataset = processed.select_columns(["input_ids", "labels", "length"])
    return (dataset, stats) if return_stats else dataset


def _raw_features():
    from datasets import Features, Value

    return Features({name: Value("string") for name in ("messages", "tools", "location", "error")})


def _processed_features():
    from datasets import Features, Sequence, Value

    return Features(
        {
            "input_ids": Sequence(Value("int32")),
            "labels": Sequence(Value("int32")),
            "length": Value("int32"),
            "num_supervised": Value("int32"),
            "truncated": Value("bool"),
            "status": Value("int8"),
        }
    )


def _tokenize_rows(batch, tokenizer, opts: SFTOptions, skip_invalid: bool) -> dict:
    conversations, locations = [], []
    for messages, tools, location, error in zip(
        batch["messages"], batch["tools"], batch["location"], batch["error"], strict=True
    ):
        if error is None:
            key = f"{messages}\0{tools or ''}"
            conversations.append((json.loads(messages), json.loads(tools) if tools else None, key))
        locations.append(location if error is None else None)  # None: invalid, found while reading
    # Content holding one of the tokenizer's special tokens (the pad token <|endoftext|>, MiniMind-3's vision / audio
    # placeholders, ...) would be encoded as that token and supervised: invalid, like the ChatML markers.
    specials = [t for t in tokenizer.all_special_tokens if t]
    forged = [next((t for t in specials if t in key), None) for _, _, key in conversations]
    results = iter(encode_conversations(conversations, tokenizer, opts))
    forged = iter(forged)
    out = {name: [] for name in _processed_features()}
    for location in locations:
        result = None if location is None else next(results)
        token = None if location is None else next(forged)
        if token is not None:
            result = SFTDataError(f"contains the tokenizer's special token {token}, which text must not forge")
        if isinstance(result, SFTDataError) and not skip_invalid:
            raise SFTDataError(f"{location}: {result}\n  ({SKIP_INVALID_HINT})")
        if result is None or isinstance(result, SFTDataError):
            result, status = {"input_ids": [], "labels": [], "num_supervised": 0, "truncated": False}, INVALID
        else:
            status = KEPT if result["num_supervised"] > 0 else NO_SUPERVISION
        out["input_ids"].append(result["input_ids"])
        out["labels"].append(result["labels"])
        out["length"].append(len(result["input_ids"]))
        out["num_supervised"].append(result["num_supervised"])
        out["truncated"].append(result["truncated"])
        out["status"].append(status)
    return out


def _stats(processed, source_rows: dict) -> SFTDataStats:
    columns = {name: np.asarray(processed.data.column(name)) for name in ("status", "length", "num_supervised")}
    kept = columns["status"] == KEPT
    lengths = columns["length"][kept].astype(np.int64)
    tokens, supervised = int(lengths.sum()), int(columns["num_supervised"][kept].sum())
    p50, p90, p99 = np.percentile(lengths, [50, 90, 99]) if kept.any() else (0.0, 0.0, 0.0)
    return SFTDataStats(
        samples_in=len(processed),
        invalid=int((columns["status"] == INVALID).sum()),
        dropped=int((columns["status"] == NO_SUPERVISION).sum()),
        kept=int(kept.sum()),
        truncated=int(np.asarray(processed.data.column("truncated"))[kept].sum()),
        tokens=tokens,
        supervised_tokens=supervised,
        length_mean=float(lengths.mean()) if kept.any() else 0.0,
        length_p50=float(p50),
        length_p90=float(p90),
        length_p99=float(p99),
        supervised_fraction=supervised / tokens if tokens else 0.0,
        sources=dict(source_rows),
    )
