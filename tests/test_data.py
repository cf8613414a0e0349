"""SFT data: exact assistant masks for any ChatML template, every input format, bad input, caching, the inspector.

The mask oracle is independent of the implementation: an assistant turn "as the template renders it" is the text that
rendering messages[:i+1] adds to rendering messages[:i], minus the ``<|im_start|>assistant\\n`` header. Every
supervised run of tokens must decode to exactly one such turn, in order, and nothing else may be supervised.
"""

import importlib.util
import json
import logging
import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sft_testing import REFERENCE_TOKENIZERS
from transformers import AutoTokenizer

import minimind_hf.data as data_module
import minimind_hf.inspector as inspector
from minimind_hf.data import SYSTEM_PROMPTS, SFTDataError, load_sft_dataset, tokenize_conversation
from minimind_hf.errors import ConfigError
from minimind_hf.masking import (
    ASSISTANT_HEADER,
    EMPTY_THINK,
    IGNORE_INDEX,
    SFTOptions,
    _bounds_from_bytes,
    _bounds_from_offsets,
    _prepare,
    assistant_spans,
    encode_conversations,
)

REPO = Path(__file__).resolve().parents[1]
TOKENIZERS = {
    "minimind2": REFERENCE_TOKENIZERS["minimind2"],  # injects a default system prompt, no generation markers
    "minimind3": REFERENCE_TOKENIZERS["minimind3"],  # renders an empty <think> block in every assistant turn
    "bundled": REPO / "minimind_hf" / "tokenizer",  # minimind-3 rendering with {% generation %} markers
}
RAW = {"system_prompt_ratio": 0.0, "empty_think_ratio": 1.0}  # the template's rendering, untouched
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _load_tokenizer(name):
    if not TOKENIZERS[name].is_dir():
        pytest.skip(f"{TOKENIZERS[name]} is not there")
    return AutoTokenizer.from_pretrained(TOKENIZERS[name])


@pytest.fixture(scope="module", params=list(TOKENIZERS))
def tokenizer(request):
    return _load_tokenizer(request.param)


@pytest.fixture(scope="module")
def tok3():
    return _load_tokenizer("minimind3")


@pytest.fixture(scope="module")
def tok2():
    return _load_tokenizer("minimind2")


def _is_bundled(tokenizer):
    return Path(tokenizer.name_or_path).resolve() == TOKENIZERS["bundled"].resolve()


def _bench_module(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------------- oracle


def render(tokenizer, messages, tools=None, drop_empty_think=False):
    text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
    return text.replace(ASSISTANT_HEADER + EMPTY_THINK, ASSISTANT_HEADER) if drop_empty_think else text


def expected_turns(tokenizer, messages, tools=None, drop_empty_think=False):
    turns = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], tools, drop_empty_think)
        after = render(tokenizer, messages[: i + 1], tools, drop_empty_think)
        assert after.startswith(before)
        turn = after[len(before) :]
        assert turn.startswith(ASSISTANT_HEADER)
        turns.append(turn[len(ASSISTANT_HEADER) :])
    return turns


def supervised_runs(input_ids, labels):
    runs, current = [], []
    for token, label in zip(input_ids, labels, strict=True):
        if label == IGNORE_INDEX:
            if current:
                runs.append(current)
            current = []
        else:
            assert label == token
            current.append(token)
    return runs + [current] if current else runs


def check_masks(tokenizer, messages, tools, out, drop_empty_think=False):
    ids, labels = out["input_ids"], out["labels"]
    text = render(tokenizer, messages, tools, drop_empty_think)
    assert tokenizer.decode(ids, skip_special_tokens=False) == text
    runs = [tokenizer.decode(run, skip_special_tokens=False) for run in supervised_runs(ids, labels)]
    turns = expected_turns(tokenizer, messages, tools, drop_empty_think)
    assert runs == turns
    # Whole-text tokenization (MiniMind's input_ids) unless a turn starts with whitespace that the tokenizer merges
    # with the header's newline; then the text is tokenized in pieces cut at the turn edges.
    if ids != tokenizer(text, add_special_tokens=False).input_ids:
        assert any(turn[:1].isspace() for turn in turns)
    return ids, labels


# --------------------------------------------------------------------------------------------------- masks


HAND_WRITTEN = [
    ([{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！有什么可以帮你？"}], None),
    (
        [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4", "reasoning_content": "two plus two\nis four"},
            {"role": "user", "content": "emoji 😀 and\nnewlines\n\n"},
            {"role": "assistant", "content": "🚀 ok\n"},
        ],
        None,
    ),
    (
        [
            {"role": "system", "content": "可以调用工具。"},
            {"role": "user", "content": "北京天气？"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "北京"}}}
                ],
            },
            {"role": "tool", "content": '{"temp": 3}'},
            {"role": "assistant", "content": "北京 3 度。"},
        ],
        [WEATHER_TOOL],
    ),
]


@pytest.mark.parametrize("case", range(len(HAND_WRITTEN)))
def test_hand_written_masks(tokenizer, case):
    messages, tools = HAND_WRITTEN[case]
    check_masks(tokenizer, messages, tools, tokenize_conversation(messages, tokenizer, tools=tools, **RAW))


_ALPHABET = "abXY z09,.!?:{}\"'<>/你好世界模型训练的是了。，？！\n\t😀🚀éß"
_FRAGMENTS = ["<think>", "</think>", "<tool_call>", "  ", "\n\n", "hello world", "你好，世界", " ", "\n"]
TEXT = st.lists(st.one_of(st.text(_ALPHABET, max_size=10), st.sampled_from(_FRAGMENTS)), max_size=4).map("".join)


@st.composite
def conversations(draw):
    messages, tools = [], None
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(TEXT)})
    if draw(st.integers(0, 2)) == 0:
        tools = [WEATHER_TOOL]
    for _ in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": draw(TEXT)})
        if tools and draw(st.booleans()):
            arguments = {"city": draw(TEXT)} if draw(st.booleans()) else json.dumps({"city": draw(TEXT)})
            call = {"type": "function", "function": {"name": "get_weather", "arguments": arguments}}
            messages.append({"role": "assistant", "content": draw(TEXT), "tool_calls": [call]})
            messages += [{"role": "tool", "content": draw(TEXT)} for _ in range(draw(st.integers(1, 2)))]
        answer = {"role": "assistant", "content": draw(TEXT)}
        if draw(st.booleans()):
            answer["reasoning_content"] = draw(TEXT)
        messages.append(answer)
    return messages, tools


@settings(max_examples=100, deadline=None, database=None)
@given(conversation=conversations(), drop_empty_think=st.booleans(), cut=st.integers(2, 400))
def test_generated_masks(tokenizer, conversation, drop_empty_think, cut):
    messages, tools = conversation
    think = {"empty_think_ratio": 0.0 if drop_empty_think else 1.0}
    out = tokenize_conversation(messages, tokenizer, tools=tools, system_prompt_ratio=0.0, **think)
    ids, labels = check_masks(tokenizer, messages, tools, out, drop_empty_think)
    # Truncation keeps the start: a prefix of the untruncated ids and labels (partial answers keep their labels).
    short = tokenize_conversation(messages, tokenizer, max_length=cut, tools=tools, system_prompt_ratio=0.0, **think)
    assert short == {"input_ids": ids[:cut], "labels": labels[:cut]}
    # The bundled template marks assistant turns with {% generation %}: transformers' own mask must agree.
    if (
        _is_bundled(tokenizer)
        and not drop_empty_think
        and ids == tokenizer(render(tokenizer, messages, tools)).input_ids
    ):
        marked = tokenizer.apply_chat_template(
            messages, tools=tools, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        assert marked["input_ids"] == ids
        assert marked["assistant_masks"] == [int(label != IGNORE_INDEX) for label in labels]


def test_bundled_masks_agree_with_generation_markers():
    tokenizer = _load_tokenizer("bundled")
    for messages, tools in HAND_WRITTEN:
        out = tokenize_conversation(messages, tokenizer, tools=tools, **RAW)
        marked = tokenizer.apply_chat_template(
            messages, tools=tools, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        assert marked["input_ids"] == out["input_ids"]
        assert marked["assistant_masks"] == [int(label != IGNORE_INDEX) for label in out["labels"]]


def test_train_on_last_assistant_and_all(tok3):
    messages = HAND_WRITTEN[1][0]
    last = tokenize_conversation(messages, tok3, train_on="last_assistant", **RAW)
    runs = [tok3.decode(run) for run in supervised_runs(last["input_ids"], last["labels"])]
    assert runs == expected_turns(tok3, messages)[-1:]
    everything = tokenize_conversation(messages, tok3, train_on="all", **RAW)
    assert everything["labels"] == everything["input_ids"] == last["input_ids"]


def test_turn_starting_with_spaces_is_split_at_the_header(tok2):
    # MiniMind2's template keeps leading spaces; ByteLevel BPE merges "\n " across the header/answer edge.
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  indented answer"}]
    text = render(tok2, messages)
    whole = tok2(text, add_special_tokens=False, return_offsets_mapping=True)
    start = text.index(ASSISTANT_HEADER) + len(ASSISTANT_HEADER)
    assert any(a < start < b for a, b in whole["offset_mapping"])  # a token straddles the edge
    out = tokenize_conversation(messages, tok2, **RAW)
    check_masks(tok2, messages, None, out)
    assert out["input_ids"] != whole["input_ids"]
    first = next(i for i, label in enumerate(out["labels"]) if label != IGNORE_INDEX)
    assert tok2.decode(out["input_ids"][first - 1 : first]) == "\n"  # the header ends as it does at inference


def test_byte_and_offset_edges_agree(tokenizer):
    backend, byte_lengths = _prepare(tokenizer)
    assert byte_lengths is not None  # all three are byte-level BPE
    for messages, tools in HAND_WRITTEN:
        text = render(tokenizer, messages, tools)
        spans = assistant_spans(text)
        encoding = backend.encode(text, add_special_tokens=False)
        assert _bounds_from_bytes(text, spans, encoding.ids, byte_lengths) == _bounds_from_offsets(
            spans, encoding.offsets
        )


def test_control_tokens_in_content_are_rejected(tok3):
    for bad in ("<|im_end|>", "x<|im_start|>assistant\ny"):
        with pytest.raises(SFTDataError, match="control token"):
            tokenize_conversation([{"role": "user", "content": bad}, {"role": "assistant", "content": "a"}], tok3)


def test_system_prompt_and_empty_think_augmentations(tok3):
    plain = [
        [{"role": "user", "content": f"问题 {i}"}, {"role": "assistant", "content": f"答案 {i}"}] for i in range(60)
    ]

    def texts(**options):
        return [tok3.decode(tokenize_conversation(m, tok3, **options)["input_ids"]) for m in plain]

    always = texts(system_prompt_ratio=1.0, empty_think_ratio=1.0)
    assert all(any(text.startswith(f"<|im_start|>system\n{p}<|im_end|>") for p in SYSTEM_PROMPTS) for text in always)
    assert len({text.split("<|im_end|>")[0] for text in always}) > 3  # prompts vary across samples
    assert always == texts(system_prompt_ratio=1.0, empty_think_ratio=1.0)  # ...but not across runs
    default = texts()  # 0.2 / 0.2
    with_system = sum(text.startswith("<|im_start|>system") for text in default)
    kept_think = sum(EMPTY_THINK in text for text in default)
    assert 3 <= with_system <= 25 and 3 <= kept_think <= 25
    assert default != texts(seed=7)
    assert all(EMPTY_THINK not in text for text in texts(empty_think_ratio=0.0))
    # Never on conversations that have a system message or tools.
    for messages, tools in HAND_WRITTEN[1:]:
        out = tokenize_conversation(messages, tok3, tools=tools, system_prompt_ratio=1.0, empty_think_ratio=1.0)
        assert out == tokenize_conversation(messages, tok3, tools=tools, **RAW)


def test_no_random_system_prompt_for_tool_conversations(tokenizer):
    # MiniMind leaves tool conversations alone: their system turn is where the tools are declared.
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "北京"}}}
    user, answer = {"role": "user", "content": "北京天气？"}, {"role": "assistant", "content": "北京 3 度。"}
    tool_chats = [
        ([user, {"role": "assistant", "content": "", "tool_calls": [call]}], None),  # a tool call only
        ([user, {"role": "assistant", "content": "查一下。"}, {"role": "tool", "content": "3"}, answer], None),
        ([user, answer], [WEATHER_TOOL]),  # tools offered, none called
    ]
    full = [user, {"role": "assistant", "content": "", "tool_calls": [call]}, {"role": "tool", "content": "3"}, answer]
    tool_chats += [(full, None), (full, [WEATHER_TOOL])]
    for messages, tools in tool_chats:
        out = tokenize_conversation(messages, tokenizer, tools=tools, system_prompt_ratio=1.0, empty_think_ratio=1.0)
        assert out == tokenize_conversation(messages, tokenizer, tools=tools, **RAW), (messages, tools)
        assert not any(prompt in tokenizer.decode(out["input_ids"]) for prompt in SYSTEM_PROMPTS)
    plain = tokenize_conversation([user, answer], tokenizer, system_prompt_ratio=1.0, empty_think_ratio=1.0)
    assert any(prompt in tokenizer.decode(plain["input_ids"]) for prompt in SYSTEM_PROMPTS)


def test_matches_minimind_native_dataset(tokenizer, tmp_path):
    if _is_bundled(tokenizer):
        pytest.skip("the native baseline is for MiniMind's own tokenizers")
    synth = _bench_module("synth_sft")
    native_module = _bench_module("native_sft_dataset")
    path = synth.generate(str(tmp_path / "synth.jsonl"), 40, seed=1)
    native = native_module.NativeSFTDataset(
        path, tokenizer, max_length=120, add_system_ratio=0.0, empty_think_ratio=1.0, cache_dir=str(tmp_path)
    )
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    truncated = 0
    for index, record in enumerate(records):
        ours = tokenize_conversation(record["conversations"], tokenizer, max_length=120, **RAW)
        input_ids, labels = (tensor.tolist() for tensor in native[index])
        n = len(ours["input_ids"])
        truncated += n == 120
        assert input_ids[:n] == ours["input_ids"] and labels[:n] == ours["labels"]
        assert set(input_ids[n:]) <= {tokenizer.pad_token_id} and set(labels[n:]) <= {IGNORE_INDEX}
    assert truncated > 0


def test_batched_twin_matches_single(tok3, tmp_path):
    records = [{"conversations": m, "tools": t} for m, t in HAND_WRITTEN] * 3
    records += [{"conversations": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a" * i}]}
                for i in range(150)]  # fmt: skip
    path = _write_jsonl(tmp_path / "mix.jsonl", records)
    options = {"system_prompt_ratio": 0.5, "empty_think_ratio": 0.5, "seed": 3, "max_length": 512}
    dataset = load_sft_dataset(str(path), tok3, cache_dir=str(tmp_path / "cache"), **options)
    assert len(dataset) == len(records)
    for row, record in zip(dataset, records, strict=True):
        single = tokenize_conversation(record["conversations"], tok3, tools=record.get("tools"), **options)
        assert row == {**single, "length": len(single["input_ids"])}
    # The chunked (threaded) batch path gives the same as one call per conversation.
    opts = SFTOptions(max_length=48)
    items = [(r["conversations"], r.get("tools"), json.dumps(r)) for r in records]
    assert encode_conversations(items, tok3, opts) == [encode_conversations([item], tok3, opts)[0] for item in items]


# --------------------------------------------------------------------------------------------------- formats


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_all_formats_render_like_their_canonical_form(tok3, tmp_path):
    canonical = HAND_WRITTEN[2]
    calls_as_json = json.dumps([{"name": "get_weather", "arguments": {"city": "北京"}}], ensure_ascii=False)
    minimind = {  # MiniMind: tools (JSON string) on the system message, tool_calls as a JSON string
        "conversations": [
            {
                "role": "system",
                "content": "可以调用工具。",
                "tools": json.dumps([WEATHER_TOOL]),
                "reasoning_content": None,
            },
            {"role": "user", "content": "北京天气？"},
            {"role": "assistant", "content": None, "tool_calls": calls_as_json},
            {"role": "tool", "content": '{"temp": 3}'},
            {"role": "assistant", "content": "北京 3 度。"},
        ]
    }
    minimind2 = json.loads(json.dumps(minimind))
    minimind2["conversations"][0] = {"role": "system", "content": "可以调用工具。", "functions": [WEATHER_TOOL]}
    openai = {
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "可以调用"}, {"type": "text", "text": "工具。"}]},
            {"role": "user", "content": "北京天气？"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": json.loads(calls_as_json)[0]}]},
            {"role": "tool", "content": '{"temp": 3}', "tool_call_id": "c1"},
            {"role": "assistant", "content": "北京 3 度。"},
        ],
        "tools": [WEATHER_TOOL],
    }  # fmt: skip
    sharegpt = {
        "system": "可以调用工具。",
        "tools": json.dumps([WEATHER_TOOL]),
        "conversations": [
            {"from": "human", "value": "北京天气？"},
            {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "北京"}})},
            {"from": "observation", "value": '{"temp": 3}'},
            {"from": "gpt", "value": "北京 3 度。"},
        ],
    }
    expected = tokenize_conversation(canonical[0], tok3, tools=canonical[1], **RAW)
    (tmp_path / "data").mkdir()
    _write_jsonl(tmp_path / "data" / "a.jsonl", [minimind, minimind2])
    (tmp_path / "data" / "b.json").write_text(json.dumps([openai]), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist([sharegpt]), tmp_path / "data" / "c.parquet")
    dataset = load_sft_dataset(str(tmp_path / "data"), tok3, cache_dir=str(tmp_path / "cache"), **RAW)
    assert len(dataset) == 4
    for row in dataset:
        assert row["input_ids"] == expected["input_ids"] and row["labels"] == expected["labels"]
    # Globs and plain lists of sources name the same files.
    by_glob = load_sft_dataset(str(tmp_path / "data" / "*.json*"), tok3, cache_dir=str(tmp_path / "cache"), **RAW)
    assert len(by_glob) == 3


# --------------------------------------------------------------------------------------------------- bad input

GOOD = {"conversations": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
BAD_LINES = {
    "malformed JSON": (b'{"conversations": [', "malformed JSON"),
    "not a list": (b'{"conversations": "hi"}', "must be a list"),
    "unknown role": (b'{"conversations": [{"role": "robot", "content": "x"}]}', "unknown role 'robot'"),
    "missing content": (b'{"conversations": [{"role": "user"}, {"role": "assistant", "content": "a"}]}', "missing"),
    "non-string content": (b'{"messages": [{"role": "user", "content": 42}]}', "not a string"),
    "no assistant": (b'{"conversations": [{"role": "user", "content": "x"}]}', "no assistant turn"),
    "invalid utf-8": (b'{"conversations": "\xff\xfe"}', "invalid UTF-8"),
    "unknown format": (b'{"text": "plain pretraining text"}', "unknown format"),
    "message not an object": (b'{"conversations": ["hi"]}', "not a JSON object"),
    "record not an object": (b"[1, 2]", "expected a JSON object"),
    "control token": (b'{"messages": [{"role": "user", "content": "<|im_end|>"}, {"role": "assistant", "content": "a"}]}', "control token"),
    "bad tool calls": (b'{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": "{oops"}]}', "not valid JSON"),
    "deep nesting": (b'{"conversations": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    "lone surrogate": (b'{"messages": [{"role": "user", "content": "x\\ud800"}, {"role": "assistant", "content": "a"}]}', "unpaired surrogate U+D800"),
    "NUL": (b'{"messages": [{"role": "user", "content": "x\\u0000"}, {"role": "assistant", "content": "a"}]}', "U+0000"),
    "ESC": (b'{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "\\u001b[2J"}]}', "U+001B (ESC)"),
    "BEL": (b'{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "a\\u0007"}]}', "U+0007 (BEL)"),
    "RTL override": ('{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "a\u202eb"}]}'.encode(), "RIGHT-TO-LEFT OVERRIDE"),
    "pad token in an answer": (b'{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "a<|endoftext|>"}]}', "special token <|endoftext|>"),
    "vision token": (b'{"messages": [{"role": "user", "content": "<|image_pad|>"}, {"role": "assistant", "content": "a"}]}', "special token <|image_pad|>"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_bad_line_strict_and_skipped(tok3, tmp_path, case, caplog):
    line, reason = BAD_LINES[case]
    path = tmp_path / "data.jsonl"
    good = json.dumps(GOOD).encode()
    path.write_bytes(b"\n".join([good, good, line, good]) + b"\n")
    with pytest.raises(SFTDataError, match=re.escape(f"{path}:3: ") + ".*" + re.escape(reason)):
        load_sft_dataset(str(path), tok3, cache_dir=str(tmp_path / "cache"))
    with caplog.at_level(logging.INFO, logger="minimind_hf.data"):
        dataset, stats = load_sft_dataset(
            str(path), tok3, skip_invalid=True, cache_dir=str(tmp_path / "c"), return_stats=True
        )
    assert len(dataset) == 3 and (stats.samples_in, stats.invalid, stats.kept) == (4, 1, 3)
    assert "skipped 1 invalid" in caplog.text
    if (
        "special token" not in reason
    ):  # found while reading (special tokens: while tokenizing, by the tokenizer's list)
        assert "1 invalid records will be skipped" in caplog.text


@pytest.mark.parametrize("content", [b"", b"\n\n", b"[]"])
def test_empty_file(tok3, tmp_path, content):
    empty = tmp_path / ("empty.json" if content == b"[]" else "empty.jsonl")
    empty.write_bytes(content)
    good = _write_jsonl(tmp_path / "good.jsonl", [GOOD])
    with pytest.raises(SFTDataError, match=re.escape(f"{empty}: file is empty")):
        load_sft_dataset(str(empty), tok3, cache_dir=str(tmp_path / "cache"))
    dataset, stats = load_sft_dataset(
        f"{empty},{good}", tok3, skip_invalid=True, cache_dir=str(tmp_path / "cache"), return_stats=True
    )
    assert len(dataset) == 1 and stats.invalid == 1
    with pytest.raises(SFTDataError, match="no sample"):  # skipping everything leaves nothing to train on
        load_sft_dataset(str(empty), tok3, skip_invalid=True, cache_dir=str(tmp_path / "cache"))


def test_bad_sources(tok3, tmp_path):
    cache = str(tmp_path / "cache")
    for source, reason in [
        (str(tmp_path / "missing.jsonl"), "no such file"),
        (str(tmp_path / "*.jsonl"), "no files match"),
        (str(tmp_path), "directory has no"),
        (f"{tmp_path / 'x.jsonl'}:-1", "must be positive"),
    ]:
        with pytest.raises(SFTDataError, match=reason):
            load_sft_dataset(source, tok3, cache_dir=cache)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SFTDataError, match="unsupported file type"):
        load_sft_dataset(str(tmp_path / "notes.txt"), tok3, cache_dir=cache)
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(SFTDataError, match="unreadable parquet"):
        load_sft_dataset(str(tmp_path / "broken.parquet"), tok3, cache_dir=cache)
    (tmp_path / "broken.json").write_text('[{"conversations": ')
    with pytest.raises(SFTDataError, match="malformed JSON"):
        load_sft_dataset(str(tmp_path / "broken.json"), tok3, cache_dir=cache)
    for text in ("42", "null", "true", '"hello"', "3.5"):  # JSON, but no records in it
        scalar = tmp_path / "scalar.json"
        scalar.write_text(text)
        expected = f"{scalar}: expected a JSON array of records or an object, got {text}"
        with pytest.raises(SFTDataError, match=re.escape(expected)):
            load_sft_dataset(str(scalar), tok3, cache_dir=cache)


def test_json_file_errors_name_the_file_and_record(tok3, tmp_path):
    path = tmp_path / "data.json"
    for records, reason in [
        ([GOOD, {"conversations": "hi"}, GOOD], "record 1: 'conversations' must be a list"),
        ([GOOD, 5], "record 1: expected a JSON object, got int"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "record 0: message 0: unknown role 'robot'"),
    ]:
        path.write_text(json.dumps(records))
        with pytest.raises(SFTDataError, match=re.escape(f"{path} {reason}")):
            load_sft_dataset(str(path), tok3, cache_dir=str(tmp_path / "cache"))


def test_hub_name_offline_fails_fast_and_clearly(tok3, tmp_path):
    start = time.perf_counter()
    with pytest.raises(SFTDataError, match="not a local file.*Hugging Face Hub"):
        load_sft_dataset("no-such-owner/no-such-sft-dataset", tok3, cache_dir=str(tmp_path))
    one_file = "no-such-owner/no-such-sft-dataset/sft_512.jsonl"
    reason = "loading file sft_512.jsonl of dataset no-such-owner/no-such-sft-dataset from the Hugging Face Hub failed"
    with pytest.raises(
        SFTDataError, match=re.escape(f"{one_file}: not a local file") + ".*" + re.escape(reason) + ".*offline"
    ):
        load_sft_dataset(one_file, tok3, cache_dir=str(tmp_path))
    assert time.perf_counter() - start < 20


def test_template_failure_names_the_line(tok3, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZERS["minimind3"])
    tokenizer.chat_template = "{% if messages|length > 2 %}{{ raise_exception('too long') }}{% endif %}" + (
        tok3.chat_template
    )
    long = {"conversations": GOOD["conversations"] * 2}
    path = _write_jsonl(tmp_path / "data.jsonl", [GOOD, long, GOOD])
    with pytest.raises(SFTDataError, match=re.escape(f"{path}:2: chat template failed") + ".*too long"):
        load_sft_dataset(str(path), tokenizer, cache_dir=str(tmp_path / "cache"))
    dataset, stats = load_sft_dataset(
        str(path), tokenizer, skip_invalid=True, cache_dir=str(tmp_path / "cache"), return_stats=True
    )
    assert len(dataset) == 2 and stats.invalid == 1


# --------------------------------------------------------------------------------------------------- length + stats


def test_truncation_drops_unsupervised_samples_and_reports(tok3, tmp_path, caplog):
    long_question = {
        "conversations": [{"role": "user", "content": "问" * 200}, {"role": "assistant", "content": "答"}]
    }
    long_answer = {"conversations": [{"role": "user", "content": "问"}, {"role": "assistant", "content": "答" * 200}]}
    path = _write_jsonl(tmp_path / "data.jsonl", [GOOD, long_question, long_answer])
    with caplog.at_level(logging.INFO, logger="minimind_hf.data"):
        dataset, stats = load_sft_dataset(
            str(path), tok3, max_length=32, cache_dir=str(tmp_path / "cache"), return_stats=True, **RAW
        )
    assert (stats.samples_in, stats.kept, stats.dropped, stats.truncated, stats.invalid) == (3, 2, 1, 1, 0)
    assert len(dataset) == 2 and dataset[1]["length"] == 32
    answer = dataset[1]["labels"]
    assert answer[-1] != IGNORE_INDEX and sum(label != IGNORE_INDEX for label in answer) < 32  # partial labels kept
    assert all(any(label != IGNORE_INDEX for label in row["labels"][1:]) for row in dataset)
    assert stats.length_p50 <= stats.length_p90 <= stats.length_p99 <= 32
    assert 0 < stats.supervised_fraction < 1
    assert stats.tokens == sum(dataset["length"])
    assert "samples in 3, kept 2, dropped 1" in caplog.text and "truncated 1" in caplog.text


# --------------------------------------------------------------------------------------------------- mixtures + cache


def test_mixtures(tok3, tmp_path):
    a = _write_jsonl(tmp_path / "a.jsonl", [GOOD] * 100)
    b = _write_jsonl(
        tmp_path / "b.jsonl", [{"conversations": GOOD["conversations"][:1] * 2 + GOOD["conversations"][1:]}] * 40
    )
    cache = str(tmp_path / "cache")
    _, stats = load_sft_dataset(f"{a}:0.3,{b}:2", tok3, cache_dir=cache, return_stats=True)
    assert stats.sources == {str(a): 30, str(b): 80} and stats.kept == 110
    _, same = load_sft_dataset({str(a): 0.3, str(b): 2.0}, tok3, cache_dir=cache, return_stats=True)
    _, listed = load_sft_dataset([f"{a}:0.3", str(b)], tok3, cache_dir=cache, return_stats=True)
    assert same.sources == stats.sources and listed.sources == {str(a): 30, str(b): 40}
    first = load_sft_dataset(f"{a}:0.5", tok3, cache_dir=cache, seed=1)
    assert first["input_ids"] == load_sft_dataset(f"{a}:0.5", tok3, cache_dir=cache, seed=1)["input_ids"]


@pytest.fixture
def count_tokenization(monkeypatch):
    calls = []
    real = data_module.encode_conversations

    def counting(*args, **kwargs):
        calls.append(len(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(data_module, "encode_conversations", counting)
    return calls


def test_second_run_hits_the_cache_and_any_change_retokenizes(tok3, tok2, tmp_path, count_tokenization):
    path = _write_jsonl(tmp_path / "data.jsonl", [GOOD, *[{"conversations": m} for m, t in HAND_WRITTEN[:2]]])
    cache = str(tmp_path / "cache")

    def load(source=str(path), tokenizer=tok3, **options):
        before = len(count_tokenization)
        dataset = load_sft_dataset(source, tokenizer, cache_dir=cache, **options)
        return dataset, len(count_tokenization) > before

    first, tokenized = load()
    assert tokenized
    again, tokenized = load()
    assert not tokenized
    assert again.cache_files == first.cache_files  # the same cache key: the same Arrow file
    assert again["input_ids"] == first["input_ids"]

    edited_template = AutoTokenizer.from_pretrained(TOKENIZERS["minimind3"])
    edited_template.chat_template = "{#- same output, different template -#}" + tok3.chat_template
    changes = [
        {"tokenizer": tok2},
        {"tokenizer": edited_template},
        {"max_length": 16},
        {"train_on": "all"},
        {"system_prompt_ratio": 0.5},
        {"empty_think_ratio": 0.5},
        {"seed": 1},
        {"source": f"{path}:0.5"},
    ]
    cache_files = {first.cache_files[0]["filename"]}
    for change in changes:
        changed, tokenized = load(**change)
        assert tokenized, change
        cache_files.add(changed.cache_files[0]["filename"])
        assert not load(**change)[1], change  # and that is cached in turn
    assert len(cache_files) == len(changes) + 1
    # Editing the file re-reads and re-tokenizes it.
    _write_jsonl(path, [GOOD, GOOD])
    edited, tokenized = load()
    assert tokenized and len(edited) == 2


def test_num_proc(tok3, tmp_path):
    records = [{"conversations": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
               for i in range(64)]  # fmt: skip
    path = _write_jsonl(tmp_path / "data.jsonl", records)
    single = load_sft_dataset(str(path), tok3, cache_dir=str(tmp_path / "one"))
    double = load_sft_dataset(str(path), tok3, num_proc=2, cache_dir=str(tmp_path / "two"))
    assert double["input_ids"] == single["input_ids"] and double["labels"] == single["labels"]
    # An error inside a worker process still arrives as SFTDataError naming the line.
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZERS["minimind3"])
    tokenizer.chat_template = "{% if messages[1].content == 'a63' %}{{ raise_exception('bad') }}{% endif %}" + (
        tok3.chat_template
    )
    with pytest.raises(SFTDataError, match=re.escape(f"{path}:64: chat template failed")):
        load_sft_dataset(str(path), tokenizer, num_proc=2, cache_dir=str(tmp_path / "three"))


@pytest.fixture
def fake_hub(monkeypatch):
    """``datasets.load_dataset`` serving HAND_WRITTEN as any hub dataset or file; returns the requests made."""
    import datasets

    rows = [{"messages": m, "tools": json.dumps(t) if t else None} for m, t in HAND_WRITTEN]
    requested = []

    def fake_load_dataset(path, data_files=None, split=None, cache_dir=None):
        requested.append({"path": path, "data_files": data_files, "split": split})
        return datasets.Dataset.from_list([{"record": json.dumps(r)} for r in rows]).map(
            lambda row: json.loads(row["record"]), remove_columns=["record"]
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    return requested


def _hub_input_ids(tok3):
    return [tokenize_conversation(m, tok3, tools=t, **RAW)["input_ids"] for m, t in HAND_WRITTEN]


def test_hub_dataset_rows_are_read_like_files(tok3, tmp_path, fake_hub):
    expected = _hub_input_ids(tok3)
    dataset = load_sft_dataset("someone/sft-data", tok3, cache_dir=str(tmp_path), **RAW)
    assert fake_hub[-1] == {"path": "someone/sft-data", "data_files": None, "split": "train"}
    assert dataset["input_ids"] == expected
    one_file = "hf://datasets/someone/sft-data/data/train.jsonl"
    assert load_sft_dataset(one_file, tok3, cache_dir=str(tmp_path), **RAW)["input_ids"] == expected
    assert fake_hub[-1] == {"path": "json", "data_files": one_file, "split": "train"}


def test_owner_name_file_is_that_file_of_the_hub_dataset(tok3, tmp_path, fake_hub, monkeypatch):
    # configs/sft.yaml's form: jingyaogong/minimind_dataset/sft_t2t_mini.jsonl
    expected = _hub_input_ids(tok3)
    for source, builder in [
        ("someone/sft-data/data/train.jsonl", "json"),
        ("someone/sft-data/sft.parquet", "parquet"),
    ]:
        assert load_sft_dataset(source, tok3, cache_dir=str(tmp_path), **RAW)["input_ids"] == expected
        assert fake_hub[-1] == {"path": builder, "data_files": f"hf://datasets/{source}", "split": "train"}
    # Names that look local stay local errors, and the hub is not asked.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    asked = len(fake_hub)
    for source in [
        "data/sub/missing.jsonl",  # its first folder exists here
        "./someone/sft-data/train.jsonl",
        str(tmp_path / "someone" / "sft-data" / "train.jsonl"),
        "~/someone/sft-data/train.jsonl",
        "missing.jsonl",
        "someone/missing.jsonl",  # no owner/name before the file
        "someone/sft-data/notes",  # not a data file
        "some--one/sft-data/train.jsonl",  # not a valid repo id
    ]:
        with pytest.raises(SFTDataError, match=re.escape(f"{source}: no such file or directory")):
            load_sft_dataset(source, tok3, cache_dir=str(tmp_path / "cache"))
    assert len(fake_hub) == asked


def test_config_datasets_are_local_or_on_the_hub(monkeypatch):
    from minimind_hf.formats import hub_reference, parse_mixture, resolve_local

    monkeypatch.chdir(REPO)  # configs name local data relative to the repo
    checked = 0
    for config in sorted((REPO / "configs").glob("*.yaml")):
        values = yaml.safe_load(config.read_text(encoding="utf-8"))
        for key in ("dataset_name", "eval_dataset_name"):
            for source, _ in parse_mixture(values[key]) if values.get(key) else []:
                assert resolve_local(source) or hub_reference(source), f"{config.name} {key}: {source}"
                checked += 1
    assert checked >= 6


# --------------------------------------------------------------------------------------------------- inspector


def test_inspect_file_and_yaml(tmp_path, capsys, tok3):
    path = _write_jsonl(tmp_path / "data.jsonl", [{"conversations": m} for m, _ in HAND_WRITTEN[:2]])
    cache = str(tmp_path / "cache")
    tokenizer = str(TOKENIZERS["minimind3"])
    inspector.main(
        ["inspect", str(path), "--n", "1", "--tokenizer", tokenizer, "--colour", "never", "--cache-dir", cache]
    )
    out = capsys.readouterr().out
    assert "[[<think>\n\n</think>\n\n你好！有什么可以帮你？<|im_end|>\n]]" in out or "[[你好！有什么可以帮你？" in out
    assert "--- sample 0" in out and "--- sample 1" not in out and "samples in 2, kept 2" in out
    config = tmp_path / "recipe.yaml"
    config.write_text(
        f"model_name_or_path: minimind-tiny\ndataset_name: {path}\ntokenizer_name_or_path: {tokenizer}\n"
        "max_length: 20\nlearning_rate: 1.0\n"
    )
    inspector.main(["inspect", str(config), "--n", "2", "--colour", "always", "--cache-dir", cache])
    out = capsys.readouterr().out
    assert "max_length 20" in out and "\033[30;42m" in out and "samples in 2" in out
    inspector.main(["inspect", str(path), "--n", "1", "--tokens", "--tokenizer", tokenizer, "--cache-dir", cache])
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\s+0\s+1   '<\|im_start\|>'", next(line for line in lines if line.strip().startswith("0 ")))
    assert any(re.fullmatch(r"\s+\d+\s+2 \* '<\|im_end\|>'", line) for line in lines)  # a supervised turn end


def test_inspect_yaml_previews_what_training_gets(tmp_path, capsys, tok3):
    long = {
        "conversations": [
            {"role": "user", "content": "写长文"},
            {"role": "assistant", "content": "很长的回答。" * 300},
        ]
    }
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"\n".join([json.dumps(GOOD).encode(), b'{"conversations": [', json.dumps(long).encode()]))
    config = tmp_path / "recipe.yaml"
    head = (
        f"model_name_or_path: minimind-tiny\ntokenizer_name_or_path: {TOKENIZERS['minimind3']}\ndataset_name: {path}\n"
    )
    inspect = ["inspect", str(config), "--n", "2", "--colour", "never", "--cache-dir", str(tmp_path / "cache")]
    config.write_text(head)
    with pytest.raises(SFTDataError, match=re.escape(f"{path}:2: malformed JSON")):  # as training would fail
        inspector.main(inspect)
    config.write_text(head + "skip_invalid_samples: true\n")
    inspector.main(inspect)
    out = capsys.readouterr().out
    assert "max_length 768;" in out  # the recipe's default, as the YAML sets none
    assert "--- sample 1: 768 tokens" in out and "skipped 1 invalid, truncated 1" in out
    inspector.main([*inspect, "--max-length", "30"])
    assert "max_length 30;" in capsys.readouterr().out
    config.write_text(head + "max_lenght: 20\n")
    with pytest.raises(ConfigError, match="Unknown key 'max_lenght'.*did you mean 'max_length'"):
        inspector.main(inspect)  # `minimind-hf inspect` reports it in one line (minimind_hf.errors.user_errors)


def test_inspector_escapes_terminal_control_characters(tok3):
    ids = tok3.encode("a\x1b[2Jb\x07c\x00", add_special_tokens=False)
    shown = inspector.format_sample(ids, ids, tok3, colour=False)
    assert shown == "[[a\\x1b[2Jb\\x07c\\x00]]"
    coloured = inspector.format_sample(ids, ids, tok3, colour=True)
    assert "\x07" not in coloured and "\x00" not in coloured and "\x1b[2J" not in coloured


def test_inspect_module_entry_point(tmp_path, tok2):
    path = _write_jsonl(tmp_path / "data.jsonl", [GOOD])
    result = subprocess.run(
        [sys.executable, "-m", "minimind_hf.inspector", "inspect", str(path), "--tokenizer", str(TOKENIZERS["minimind2"]),
         "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "[[hello<|im_end|>\n]]" in result.stdout and "samples in 1, kept 1" in result.stdout
