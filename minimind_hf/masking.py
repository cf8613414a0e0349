"""Masking one conversation: render it with the chat template, tokenize it once, supervise the assistant turns.

MiniMind's rule: an assistant turn is trained on from just after its ``<|im_start|>assistant\\n`` header through its
closing ``<|im_end|>`` and the newline after it; everything else (system, user, tool results, headers, template
boilerplate) gets label -100. The spans are found in the rendered *text* and mapped to tokens, so the rule holds for
any ChatML-style template (reasoning blocks and tool calls included) while input_ids stay those of tokenizing the
whole rendered text, as MiniMind does. A template that marks what to train on with ``{% generation %}`` blocks (as
transformers' `return_assistant_tokens_mask` expects) is trusted instead: its marked spans, from transformers'
renderer, are the supervised text.

`tokenize_conversation` is the readable entry point; `encode_conversations` is its batched twin, which
`minimind_hf.data.load_sft_dataset` runs through ``datasets.map``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import weakref
from bisect import bisect_left
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import accumulate, pairwise

from transformers.utils.chat_template_utils import render_jinja_template

from .constants import IGNORE_INDEX
from .formats import SFTDataError, dump_conversation, normalize_messages

SYSTEM_PROMPTS = (
    "你是一个知识丰富的AI，尽力为用户提供准确的信息。",
    "你是minimind，一个小巧但有用的语言模型。",
    "你是一个专业的AI助手，请提供有价值的回答。",
    "你是minimind，请尽力帮助用户解决问题。",
    "你是一个可靠的AI，请给出准确的回答。",
    "You are a helpful AI assistant.",
    "You are minimind, a lightweight intelligent assistant.",
    "You are a friendly chatbot. Please answer the user's questions carefully.",
    "You are a knowledgeable AI. Try your best to provide accurate information.",
    "You are minimind, a small but useful language model.",
)
# MiniMind (minimind-3, dataset/lm_dataset.py post_processing_chat) keeps the empty think block in 20% of samples.
DEFAULT_EMPTY_THINK_RATIO = 0.2
EMPTY_THINK = "<think>\n\n</think>\n\n"
ASSISTANT_HEADER = "<|im_start|>assistant\n"
TURN_END = "<|im_end|>"
TRAIN_ON = ("assistant", "last_assistant", "all")
GENERATION_BLOCK = re.compile(r"\{%-?\s*generation\s*-?%\}")


@dataclass(frozen=True)
class SFTOptions:
    max_length: int | None = None
    train_on: str = "assistant"
    system_prompt_ratio: float = 0.2
    empty_think_ratio: float = DEFAULT_EMPTY_THINK_RATIO
    seed: int = 42
    system_prompts: tuple[str, ...] = SYSTEM_PROMPTS

    def __post_init__(self):
        if self.train_on not in TRAIN_ON:
            raise ValueError(f"train_on must be one of {TRAIN_ON}, got {self.train_on!r}")
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"max_length must be at least 2, got {self.max_length}")
        for name in ("system_prompt_ratio", "empty_think_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        object.__setattr__(self, "system_prompts", tuple(self.system_prompts))
        if self.system_prompt_ratio > 0 and not self.system_prompts:
            raise ValueError("system_prompt_ratio > 0 needs at least one system prompt")


def tokenize_conversation(messages, tokenizer, max_length=None, tools=None, **options) -> dict[str, list[int]]:
    """Tokenize one conversation: ``{"input_ids", "labels"}``, truncated to ``max_length``, not padded.

    ``messages`` may be in MiniMind, OpenAI or ShareGPT form (tools on the system message are picked up).
    Options: ``train_on`` ("assistant" | "last_assistant" | "all"), ``system_prompt_ratio``, ``empty_think_ratio``,
    ``seed``, ``system_prompts`` — the same as `load_sft_dataset`, with the same defaults; pass
    ``system_prompt_ratio=0.0, empty_think_ratio=1.0`` for the template's rendering untouched.
    """
    opts = SFTOptions(max_length=max_length, **options)
    messages_json, tools_json = dump_conversation(*normalize_messages(messages, tools))
    # Through JSON, like the dataset builder: both then render exactly the same plain data.
    messages, tools = json.loads(messages_json), json.loads(tools_json) if tools_json else None
    key = f"{messages_json}\0{tools_json or ''}"
    result = encode_conversations([(messages, tools, key)], tokenizer, opts)[0]
    if isinstance(result, SFTDataError):
        raise result
    return {"input_ids": result["input_ids"], "labels": result["labels"]}


def encode_conversations(conversations, tokenizer, opts: SFTOptions) -> list:
    """Batched twin of `tokenize_conversation`: ``[(messages, tools, key)]`` -> per item a result dict or an error.

    ``key`` is the conversation's canonical text; it seeds the sample's augmentations. Conversations go through in
    chunks: while the tokenizer (Rust, GIL released) encodes one chunk on a helper thread, Python renders the next.
    """
    backend, byte_lengths = _prepare(tokenizer)
    template_kwargs = dict(tokenizer.special_tokens_map)
    marked_template = has_generation_markers(tokenizer.chat_template)  # once per batch, not per conversation
    # With byte lengths we find token edges ourselves and skip the tokenizer's (costly) offsets.
    encode = backend.encode_batch_fast if byte_lengths is not None else backend.encode_batch
    results, in_flight = [], deque()

    def finish(first: int, texts: list[str], spans: list, encoded) -> None:
        pending = iter(zip(texts, spans, encoded.result(), strict=True))
        for i in range(first, min(first + CHUNK_SIZE, len(results))):
            if results[i] is None:
                text, marked, encoding = next(pending)
                results[i] = _label(text, marked, encoding, backend, byte_lengths, opts)

    for first in range(0, len(conversations), CHUNK_SIZE):
        texts, spans = [], []
        for messages, tools, key in conversations[first : first + CHUNK_SIZE]:
            try:
                text, marked = render_conversation(
                    messages, tools, tokenizer, template_kwargs, key, opts, marked_template
                )
                texts.append(text)
                spans.append(marked)
                results.append(None)
            except SFTDataError as err:
                results.append(err)
        in_flight.append((first, texts, spans, _encoder_thread().submit(encode, texts, add_special_tokens=False)))
        if len(in_flight) > 1:
            finish(*in_flight.popleft())
    while in_flight:
        finish(*in_flight.popleft())
    return results


CHUNK_SIZE = 64
_THREAD = {}


def _encoder_thread() -> ThreadPoolExecutor:
    if os.getpid() not in _THREAD:  # one per process: datasets' num_proc workers are forked
        _THREAD.clear()
        _THREAD[os.getpid()] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sft-tokenize")
    return _THREAD[os.getpid()]


def render_conversation(
    messages, tools, tokenizer, template_kwargs, key: str, opts: SFTOptions, marked_template: bool
) -> tuple:
    """The training text of a conversation (chat template plus MiniMind's augmentations, seeded by ``key``) and the
    character spans to supervise when the template marks them with ``{% generation %}`` (``marked_template``; else
    None: `assistant_spans` finds them)."""
    add_system, prompt_pick, keep_think = _sample_uniforms(opts.seed, key)
    is_tool_chat = bool(tools) or any(m["role"] == "tool" or "tool_calls" in m for m in messages)
    if messages[0]["role"] != "system" and not is_tool_chat and add_system < opts.system_prompt_ratio:
        prompt = opts.system_prompts[int(prompt_pick * len(opts.system_prompts))]
        messages = [{"role": "system", "content": prompt}, *messages]
    spans = None
    try:  # transformers' own renderer: its sandbox, filters and globals, and the "thinking" alias of reasoning
        if marked_template:
            (text,), (spans,) = render_jinja_template(
                [messages], tools=tools, chat_template=tokenizer.chat_template, return_assistant_tokens_mask=True,
                **template_kwargs,
            )  # fmt: skip
        else:
            text = tokenizer.apply_chat_template(
                messages, tools=tools, tokenize=False, add_generation_prompt=False, **template_kwargs
            )
    except Exception as err:  # jinja errors, raise_exception() in templates, missing template
        raise SFTDataError(f"chat template failed: {type(err).__name__}: {err}") from None
    if keep_think >= opts.empty_think_ratio:
        text, spans = _drop_empty_think(text, spans)
    return text, spans


def _drop_empty_think(text: str, spans):
    """The text without the empty think blocks after assistant headers, and ``spans`` (if any) moved to match."""
    cut = ASSISTANT_HEADER + EMPTY_THINK
    removed = [(i + len(ASSISTANT_HEADER), i + len(cut)) for i in _find_all(text, cut)]
    if spans is not None:

        def moved(position: int) -> int:
            return position - sum(min(max(position - a, 0), b - a) for a, b in removed)

        spans = [(moved(a), moved(b)) for a, b in spans if moved(a) < moved(b)]
    return text.replace(cut, ASSISTANT_HEADER), spans


def _find_all(text: str, part: str) -> list[int]:
    found, start = [], text.find(part)
    while start != -1:
        found.append(start)
        start = text.find(part, start + len(part))
    return found


def has_generation_markers(chat_template) -> bool:
    """Whether the template marks the trained text with ``{% generation %}`` (transformers' assistant-mask blocks)."""
    return isinstance(chat_template, str) and GENERATION_BLOCK.search(chat_template) is not None


def _sample_uniforms(seed: int, key: str) -> tuple[float, float, float]:
    """Three uniforms in [0, 1) fixed by (seed, sample content): augmentations are reproducible and cacheable."""
    digest = hashlib.blake2b(f"{seed}\0{key}".encode(), digest_size=24).digest()
    return tuple(int.from_bytes(digest[i : i + 8], "little") / 2.0**64 for i in (0, 8, 16))


def assistant_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the assistant turns: after each header, through ``<|im_end|>`` and its newline."""
    spans = []
    header = text.find(ASSISTANT_HEADER)
    while header != -1:
        start = header + len(ASSISTANT_HEADER)
        end = text.find(TURN_END, start)
        end = len(text) if end == -1 else end + len(TURN_END) + text.startswith("\n", end + len(TURN_END))
        spans.append((start, end))
        header = text.find(ASSISTANT_HEADER, end)
    return spans


def _label(text: str, marked, encoding, backend, byte_lengths, opts: SFTOptions) -> dict:
    spans = assistant_spans(text) if marked is None else marked
    if opts.train_on == "last_assistant":
        spans = spans[-1:]
    ids = encoding.ids
    if byte_lengths is not None:
        bounds = _bounds_from_bytes(text, spans, ids, byte_lengths)
        if bounds is None:  # a straddling token, or bytes that don't add up: ask the tokenizer for offsets
            encoding = backend.encode(text, add_special_tokens=False)
            ids = encoding.ids
    if byte_lengths is None or bounds is None:
        bounds = _bounds_from_offsets(spans, encoding.offsets)
    if bounds is None:
        # A token straddles a span edge (e.g. "\n " when a turn starts with spaces), which would blur the mask.
        # Tokenize the text in pieces cut at the span edges instead: the pieces the model also sees at inference,
        # where the prompt ends with the header.
        ids, bounds = _encode_in_pieces(text, spans, backend)
    full_length = len(ids)
    length = full_length if opts.max_length is None else min(full_length, opts.max_length)
    if opts.train_on == "all":
        labels = list(ids[:length])
        supervised = length - 1
    else:
        labels = [IGNORE_INDEX] * length
        supervised = 0
        for a, b in bounds:
            b = min(b, length)
            if a < b:
                labels[a:b] = ids[a:b]
                supervised += b - max(a, 1)  # label 0 is never predicted (no token before it)
    return {
        "input_ids": list(ids[:length]),
        "labels": labels,
        "num_supervised": max(supervised, 0),
        "truncated": full_length > length,
    }


def _bounds_from_offsets(spans, offsets):
    """Token index ranges of character spans, or None if a token straddles a span edge."""
    starts = [start for start, _ in offsets]
    bounds = []
    for s, e in spans:
        a, b = bisect_left(starts, s), bisect_left(starts, e)
        if (a > 0 and offsets[a - 1][1] > s) or (b > 0 and offsets[b - 1][1] > e):
            return None
        bounds.append((a, b))
    return bounds


def _bounds_from_bytes(text: str, spans, ids, byte_lengths):
    """Like `_bounds_from_offsets`, from each token's byte length (byte-level BPE tokens concatenate to the text)."""
    ends = list(accumulate(map(byte_lengths.__getitem__, ids)))
    if not ends or ends[-1] != len(text.encode("utf-8")):
        return None
    bounds = []
    for s, e in spans:
        a, b = _token_at_byte(ends, len(text[:s].encode("utf-8"))), _token_at_byte(ends, len(text[:e].encode("utf-8")))
        if a is None or b is None:
            return None
        bounds.append((a, b))
    return bounds


def _token_at_byte(ends: list[int], edge: int) -> int | None:
    """Index of the token that starts at byte ``edge`` (len(ends) at the end), or None if a token straddles it."""
    if edge == 0:
        return 0
    j = bisect_left(ends, edge)
    return j + 1 if j < len(ends) and ends[j] == edge else None


_PREPARED = weakref.WeakKeyDictionary()


def _prepare(tokenizer):
    """``(backend, byte_lengths)`` for a tokenizer, cached.

    backend: its Rust tokenizer, copied without truncation/padding if a tokenizer.json set them (we truncate ourselves).
    byte_lengths: bytes of text behind each token id, for byte-level BPE without a normalizer (tokens then concatenate
    to the text's bytes), else None.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise TypeError("SFT preprocessing needs a fast tokenizer (one with a backend_tokenizer)")
    size = backend.get_vocab_size(with_added_tokens=True)
    cached = _PREPARED.get(tokenizer)
    if cached is not None and cached[0] == size:
        return cached[1:]
    if backend.truncation or backend.padding:
        backend = type(backend).from_str(backend.to_str())
        backend.no_truncation()
        backend.no_padding()
    spec = json.loads(backend.to_str())
    pre = spec.get("pre_tokenizer") or {}
    pre_types = {p.get("type") for p in pre.get("pretokenizers", [pre])}
    byte_lengths = None
    if spec.get("normalizer") is None and spec["model"].get("type") == "BPE" and "ByteLevel" in pre_types:
        vocab = backend.get_vocab(with_added_tokens=True)
        byte_lengths = [0] * (max(vocab.values()) + 1)
        for token, index in vocab.items():
            byte_lengths[index] = len(token)  # one byte-level alphabet character per byte
        for index, added in backend.get_added_tokens_decoder().items():
            byte_lengths[index] = len(added.content.encode("utf-8"))
    _PREPARED[tokenizer] = (size, backend, byte_lengths)
    return backend, byte_lengths


def _encode_in_pieces(text: str, spans, backend):
    cuts = sorted({0, len(text), *(edge for span in spans for edge in span)})
    pieces = list(pairwise(cuts))
    encodings = backend.encode_batch([text[a:b] for a, b in pieces], add_special_tokens=False)
    ids, token_at = [], {}
    for (a, _), encoding in zip(pieces, encodings, strict=True):
        token_at[a] = len(ids)
        ids.extend(encoding.ids)
    token_at[len(text)] = len(ids)
    return ids, [(token_at[s], token_at[e]) for s, e in spans]
