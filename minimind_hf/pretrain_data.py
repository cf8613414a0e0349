"""Pretraining data: ``{"text": ...}`` records -> ``[bos] + tokens + [eos]`` documents -> rows of max_length tokens.

    load_pretrain_dataset("data/pretrain_hq.jsonl", tokenizer, max_length=512)     # -> Dataset(input_ids), cached
    pack_documents([[1, 5, 2], [1, 7, 8, 9, 2]], max_length=4)                     # -> [[1, 5, 2, 1], [7, 8, 9, 2]]

Every document is wrapped in bos/eos as MiniMind's ``PretrainDataset`` does, and every token is trained (the rows
hold no labels; the collator copies ``input_ids``). Two row layouts:

* ``packing=True`` (default): the documents are concatenated in order and cut into rows of exactly ``max_length``
  (the last row of each ``datasets.map`` batch may be shorter), as MiniMind's first pretraining pipeline did with its
  eos-separated token file. No padding, nothing truncated, fixed-shape batches on sdpa's fused causal kernel.
  Attention crosses document boundaries inside a row; bos/eos mark them, as in GPT-style pretraining.
* ``packing=False``: one document per row, truncated to ``max_length`` — MiniMind2/3's ``PretrainDataset`` exactly
  (it pads to max_length; the collator pads to the batch's longest row, same loss). Use it to compare loss curves.

The transformers padding-free layout (the SFT collator's ``packing``: one flattened row per batch, positions
restarting per document) would also keep documents apart, but under sdpa its block mask spans the whole batch
(32 x ~300 tokens squared), which costs more than MiniMind's padding saves; only flash-attention's varlen path
makes it pay, so it is not the default here.

Reading, validation (bad records name file and line), mixtures and hub sources are the SFT pipeline's
(`minimind_hf.sources.read_sources`); tokenizing + packing is one batched ``datasets.map`` under a fingerprint of the
files, tokenizer and options, so a rerun tokenizes nothing.
"""

from __future__ import annotations

import logging
import sys
from itertools import chain

import numpy as np

from .fingerprints import code_fingerprint, hash_parts, tokenizer_fingerprint
from .formats import DataError
from .sources import read_sources
from .text_safety import unsafe_character

logger = logging.getLogger(__name__)

__all__ = ["DataError", "iter_texts", "load_pretrain_dataset", "pack_documents", "wrap_document"]

# Documents per map batch: each batch's last row may be short, so large batches keep almost every row full.
MAP_BATCH_SIZE = 10_000


def iter_texts(records):
    """Turn ``(location, record)`` pairs into raw rows ``{text, location, error}``; bad records get an ``error``."""
    for location, record in records:
        row = {"text": None, "location": location, "error": None}
        if isinstance(record, DataError):
            row["error"] = str(record)
        elif not isinstance(record, dict) or not isinstance(record.get("text"), str):
            found = f"keys {sorted(record)[:10]}" if isinstance(record, dict) else type(record).__name__
            if isinstance(record, dict) and "text" in record:
                found = f"'text' of type {type(record['text']).__name__}"
            row["error"] = f'{location}: expected a {{"text": string}} record, got {found}'
        elif not record["text"].strip():
            row["error"] = f"{location}: empty text"
        elif problem := unsafe_character(record["text"]):
            row["error"] = f"{location}: contains {problem} (see minimind_hf.text_safety)"
        else:
            row["text"] = record["text"]
        yield row


def wrap_document(token_ids: list[int], bos_id: int, eos_id: int, max_length: int | None = None) -> list[int]:
    """``[bos] + tokens + [eos]``; with ``max_length``, tokens are cut to fit (MiniMind: ``max_length - 2``)."""
    if max_length is not None:
        token_ids = token_ids[: max_length - 2]
    return [bos_id, *token_ids, eos_id]


def pack_documents(documents: list[list[int]], max_length: int) -> list[list[int]]:
    """Concatenate documents in order and cut the stream into rows of ``max_length`` (the last may be shorter)."""
    stream = np.fromiter(chain.from_iterable(documents), dtype=np.int32)
    return [stream[start : start + max_length] for start in range(0, len(stream), max_length)]


def load_pretrain_dataset(
    dataset_name,
    tokenizer,
    *,
    max_length: int = 512,
    packing: bool = True,
    seed: int = 42,
    skip_invalid: bool = False,
    num_proc: int | None = None,
    cache_dir: str | None = None,
):
    """Read, validate, tokenize, wrap and pack pretraining text into a cached ``Dataset(input_ids)``.

    ``dataset_name`` is a file (.jsonl/.json/.parquet of ``{"text": ...}`` records), folder, glob, hub dataset or
    mixture, as for `minimind_hf.data.load_sft_dataset` (``seed`` draws mixture fractions). Bad records raise
    `DataError` naming file and line, or with ``skip_invalid`` are skipped. Rows: see the module docstring.
    """
    from datasets import Features, Sequence, Value

    if max_length < 3:
        raise ValueError(f"max_length must leave room for bos, a token and eos, got {max_length}")
    if tokenizer.bos_token_id is None or tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer needs a bos and an eos token to delimit documents")
    features = Features({name: Value("string") for name in ("text", "location", "error")})
    raw, _, raw_fingerprint = read_sources(
        dataset_name, iter_texts, features, seed=seed, skip_invalid=skip_invalid, cache_dir=cache_dir
    )
    documents = raw.with_format("arrow")["error"].null_count  # respects a mixture's row selection
    options = {"max_length": max_length, "packing": packing, "skip_invalid": skip_invalid}
    dataset = raw.map(
        _tokenize_and_pack,
        batched=True,
        batch_size=MAP_BATCH_SIZE,
        num_proc=num_proc,
        fn_kwargs={"tokenizer": tokenizer, "max_length": max_length, "packing": packing},
        remove_columns=raw.column_names,
        features=Features({"input_ids": Sequence(Value("int32"))}),
        new_fingerprint=hash_parts(
            raw_fingerprint, tokenizer_fingerprint(tokenizer), options, code_fingerprint(sys.modules[__name__])
        ),
        desc="Tokenizing and packing text" if packing else "Tokenizing text",
    )
    if len(dataset) == 0:
        raise DataError(f"{dataset_name}: no usable text")
    lengths = np.diff(dataset.data.column("input_ids").combine_chunks().offsets.to_numpy())
    full = int((lengths == max_length).sum())
    logger.info(
        "Pretraining data %s: %d documents, %d skipped as invalid -> %d rows (%d of max_length %d), %d tokens",
        dataset_name, documents, len(raw) - documents, len(dataset), full, max_length, int(lengths.sum()),
    )  # fmt: skip
    return dataset


def _tokenize_and_pack(batch, tokenizer, max_length: int, packing: bool) -> dict:
    texts = [text for text, error in zip(batch["text"], batch["error"], strict=True) if error is None]
    token_ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    limit = None if packing else max_length
    documents = [wrap_document(ids, tokenizer.bos_token_id, tokenizer.eos_token_id, limit) for ids in token_ids]
    return {"input_ids": pack_documents(documents, max_length) if packing else documents}
