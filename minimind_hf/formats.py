"""Reading SFT sources into one canonical conversation format.

Accepted records (one per JSONL line, JSON array item, parquet row or hub row):

* MiniMind: ``{"conversations": [{"role", "content", "reasoning_content"?, "tool_calls"?}, ...]}``; tools sit on the
  system message as ``"tools"`` (or MiniMind2's ``"functions"``), as a list or a JSON string.
* OpenAI: ``{"messages": [...]}`` with the same message fields; content may be a list of ``{"type": "text"}`` parts.
* ShareGPT: ``{"conversations": [{"from", "value"}, ...]}``, roles human/gpt/system/function_call/observation.
* Any of them may carry a top-level ``"tools"`` column (and ShareGPT a top-level ``"system"`` prompt).

Every record becomes ``(messages, tools)``: messages with roles system/user/assistant/tool, string content, and optional
``reasoning_content`` / ``tool_calls`` (OpenAI shape); tools a list of JSON schemas or None. Bad records raise
`SFTDataError`; the readers catch it per record and yield it, so callers decide whether to stop or skip.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError
from .text_safety import strings, unsafe_character

# ChatML control tokens. Content containing them would forge turn boundaries, so it is rejected.
CONTROL_TOKENS = ("<|im_start|>", "<|im_end|>")
DATA_SUFFIXES = (".jsonl", ".json", ".parquet")

_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
}
_CHAT_ROLES = {"system": "system", "user": "user", "assistant": "assistant", "tool": "tool", "function": "tool"}


class DataError(UserError, ValueError):
    """A problem with input data, SFT conversations or pretraining text. The message names the file and line (or
    row) it comes from."""


SFTDataError = DataError  # the name the SFT pipeline and its users know it by


# What a user passes to skip bad records instead of failing, in each place they meet such an error.
SKIP_INVALID_HINT = (
    "to skip bad records: skip_invalid_samples: true in the recipe YAML or --skip_invalid_samples true, "
    "--skip-invalid for minimind-hf inspect, skip_invalid=True in Python"
)


# --------------------------------------------------------------------------------------------------- records


def normalize_record(record) -> tuple[list[dict], list[dict] | None]:
    """Turn one record of any accepted format into ``(messages, tools)``; raise `SFTDataError` if it is unusable."""
    if not isinstance(record, dict):
        raise SFTDataError(f"expected a JSON object, got {type(record).__name__}")
    if record.get("conversations") is not None:
        key = "conversations"
    elif record.get("messages") is not None:
        key = "messages"
    else:
        raise SFTDataError(f"unknown format: no 'conversations' or 'messages' list (keys: {sorted(record)[:10]})")
    turns = record[key]
    if not isinstance(turns, list):
        raise SFTDataError(f"'{key}' must be a list of messages, got {type(turns).__name__}")
    tools = parse_tools(record.get("tools"), "top-level 'tools'")
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise SFTDataError(f"message {i} is not a JSON object")
        sharegpt = "from" in turn and "role" not in turn
        message, turn_tools = _sharegpt_message(turn, i) if sharegpt else _chat_message(turn, i)
        tools = tools or turn_tools
        messages.append(message)
    system = record.get("system")
    if isinstance(system, str) and system and (not messages or messages[0]["role"] != "system"):
        messages.insert(0, {"role": "system", "content": system})
    return validate_messages(messages), tools


def normalize_messages(messages, tools=None) -> tuple[list[dict], list[dict] | None]:
    """Normalize a message list given directly in Python (as `tokenize_conversation` receives it)."""
    if not isinstance(messages, list):
        raise SFTDataError(f"a conversation must be a list of messages, got {type(messages).__name__}")
    return normalize_record({"messages": messages, "tools": tools})


def validate_messages(messages: list[dict]) -> list[dict]:
    if not messages:
        raise SFTDataError("empty conversation")
    if not any(m["role"] == "assistant" for m in messages):
        raise SFTDataError("no assistant turn, nothing to train on")
    return messages


def parse_tools(value, where: str) -> list[dict] | None:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise SFTDataError(f"{where} is not valid JSON: {err}") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(tool, dict) for tool in value):
        raise SFTDataError(f"{where} must be a list of JSON objects")
    return value or None


def _parse_tool_calls(value, where: str) -> list[dict] | None:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise SFTDataError(f"{where}: tool calls are not valid JSON: {err}") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise SFTDataError(f"{where}: tool calls must be a list")
    calls = []
    for call in value:
        function = call.get("function", call) if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise SFTDataError(f"{where}: each tool call needs a string 'name'")
        arguments = function.get("arguments")
        calls.append({"type": "function", "function": {"name": function["name"], "arguments": arguments or {}}})
    return calls


def _content(value, where: str, *, allow_missing: bool) -> str:
    if isinstance(value, str):
        return value
    if value is None and allow_missing:
        return ""
    if isinstance(value, list) and value and all(isinstance(p, dict) for p in value):
        if any(p.get("type", "text") != "text" or not isinstance(p.get("text"), str) for p in value):
            raise SFTDataError(f"{where}: only text content parts are supported")
        return "".join(p["text"] for p in value)
    kind = "missing" if value is None else f"not a string ({type(value).__name__})"
    raise SFTDataError(f"{where}: content is {kind}")


def _chat_message(turn: dict, i: int) -> tuple[dict, list[dict] | None]:
    where = f"message {i}"
    raw_role = turn.get("role")
    role = _CHAT_ROLES.get(raw_role) if isinstance(raw_role, str) else None
    if role is None:
        raise SFTDataError(f"{where}: unknown role {raw_role!r} (expected system, user, assistant or tool)")
    tool_calls = _parse_tool_calls(turn.get("tool_calls"), where) if role == "assistant" else None
    message = {"role": role, "content": _content(turn.get("content"), where, allow_missing=bool(tool_calls))}
    reasoning = next(
        (turn[k] for k in ("reasoning_content", "reasoning", "thinking") if turn.get(k) is not None), None
    )
    if reasoning is not None and role == "assistant":
        if not isinstance(reasoning, str):
            raise SFTDataError(f"{where}: reasoning_content is not a string")
        message["reasoning_content"] = reasoning
    if tool_calls:
        message["tool_calls"] = tool_calls
    if role == "tool" and isinstance(turn.get("name"), str):
        message["name"] = turn["name"]
    tools = None
    if role == "system":
        tools = parse_tools(turn.get("tools"), f"{where} 'tools'") or parse_tools(
            turn.get("functions"), f"{where} 'functions'"
        )
    return message, tools


def _sharegpt_message(turn: dict, i: int) -> tuple[dict, None]:
    where = f"message {i}"
    speaker = turn.get("from")
    role = _SHAREGPT_ROLES.get(speaker) if isinstance(speaker, str) else None
    if role is None:
        raise SFTDataError(f"{where}: unknown ShareGPT speaker {speaker!r}")
    value = _content(turn.get("value"), where, allow_missing=False)
    if speaker == "function_call":
        return {"role": "assistant", "content": "", "tool_calls": _parse_tool_calls(value, where) or []}, None
    return {"role": role, "content": value}, None


def dump_conversation(messages: list[dict], tools: list[dict] | None) -> tuple[str, str | None]:
    """Serialize a canonical conversation; the strings are what the dataset stores and what sample seeds hash."""
    for text in strings([messages, tools]):
        problem = unsafe_character(text)
        if problem:
            raise SFTDataError(f"contains {problem} (see minimind_hf.text_safety)")
    messages_json = json.dumps(messages, ensure_ascii=False)
    tools_json = json.dumps(tools, ensure_ascii=False) if tools else None
    for text in (messages_json, tools_json or ""):
        for token in CONTROL_TOKENS:
            if token in text:
                raise SFTDataError(f"contains the ChatML control token {token}, which would forge a turn boundary")
    return messages_json, tools_json


# --------------------------------------------------------------------------------------------------- files


def iter_file(path: str) -> Iterator[tuple[str, object]]:
    """Yield ``(location, record_or_error)`` for each record of a local data file."""
    suffix = Path(path).suffix.lower()
    if suffix == ".jsonl":
        yield from _iter_jsonl(path)
    elif suffix == ".json":
        yield from _iter_json(path)
    elif suffix == ".parquet":
        yield from _iter_parquet(path)
    else:
        yield path, SFTDataError(f"{path}: unsupported file type (expected one of {', '.join(DATA_SUFFIXES)})")


def _json_problem(err: json.JSONDecodeError) -> str:
    """What the decoder wanted and the text where it stopped: "Expecting ',' delimiter at '"b": 2}'"."""
    line_start = err.doc.rfind("\n", 0, err.pos) + 1
    where = err.doc[err.pos : err.pos + 30].split("\n")[0].rstrip()
    if not where:
        return f"{err.msg} at the end of {'the line' if err.pos > line_start else 'an empty line'}"
    return f"{err.msg} at {where!r}" + (" (the start of the line)" if err.pos == line_start else "")


def _iter_jsonl(path: str) -> Iterator[tuple[str, object]]:
    seen_any = False
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            location = f"{path}:{number}"
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            seen_any = True
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield location, SFTDataError(f"{location}: invalid UTF-8 ({err.reason} at byte {err.start})")
                continue
            try:
                yield location, json.loads(text)
            except json.JSONDecodeError as err:
                yield location, SFTDataError(f"{location}: malformed JSON, {_json_problem(err)}")
            except RecursionError:
                yield location, SFTDataError(f"{location}: JSON nested too deeply to read")
    if not seen_any:
        yield path, SFTDataError(f"{path}: file is empty")


def _iter_json(path: str) -> Iterator[tuple[str, object]]:
    with open(path, "rb") as f:
        raw = f.read()
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except RecursionError:
        yield path, SFTDataError(f"{path}: JSON nested too deeply to read")
        return
    except UnicodeDecodeError as err:
        yield path, SFTDataError(f"{path}: invalid UTF-8 ({err.reason} at byte {err.start})")
        return
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":  # several JSON values: a JSONL file named .json
            yield from _iter_jsonl(path)
        elif not raw.strip():
            yield path, SFTDataError(f"{path}: file is empty")
        else:
            yield path, SFTDataError(f"{path}:{err.lineno}: malformed JSON, {_json_problem(err)}")
        return
    if isinstance(data, dict):  # a single conversation
        data = [data]
    if not isinstance(data, list):
        got = json.dumps(data, ensure_ascii=False)
        got = got if len(got) <= 40 else got[:37] + "..."
        yield path, SFTDataError(f"{path}: expected a JSON array of records or an object, got {got}")
        return
    if not data:
        yield path, SFTDataError(f"{path}: file is empty")
    for i, record in enumerate(data):
        yield f"{path} record {i}", record


def _iter_parquet(path: str) -> Iterator[tuple[str, object]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises several unrelated types for a broken file
        yield path, SFTDataError(f"{path}: unreadable parquet file ({err})")
        return
    row = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            yield f"{path} row {row}", record
            row += 1
    if row == 0:
        yield path, SFTDataError(f"{path}: file is empty")


def iter_rows(name: str, dataset) -> Iterator[tuple[str, object]]:
    """Yield ``(location, record)`` for the rows of an already-loaded (hub) dataset."""
    for i, record in enumerate(dataset):
        yield f"{name} row {i}", record


def iter_conversations(records: Iterator[tuple[str, object]]) -> Iterator[dict]:
    """Turn located records into rows of the raw dataset; bad records become rows with an ``error``."""
    for location, record in records:
        row = {"messages": None, "tools": None, "location": location, "error": None}
        if isinstance(record, SFTDataError):
            row["error"] = str(record)
        else:
            try:
                row["messages"], row["tools"] = dump_conversation(*normalize_record(record))
            except SFTDataError as err:
                row["error"] = f"{location}: {err}"
            except RecursionError:
                row["error"] = f"{location}: nested too deeply to read"
        yield row


# --------------------------------------------------------------------------------------------------- sources


def parse_mixture(spec) -> list[tuple[str, float]]:
    """Parse a data spec into ``[(source, ratio), ...]``.

    ``spec`` is a path, directory, glob or hub name; several of them comma-separated, each optionally followed by
    ``:ratio`` (``"a.jsonl:0.7,b/*.jsonl:0.3"``); a list of such strings; or a dict ``{source: ratio}``.
    """
    if isinstance(spec, dict):
        items = [(str(source), float(ratio)) for source, ratio in spec.items()]
    else:
        parts = spec.split(",") if isinstance(spec, str) else list(spec)
        items = [_split_ratio(str(part).strip()) for part in parts if str(part).strip()]
    if not items:
        raise SFTDataError(f"no data source given in {spec!r}")
    for source, ratio in items:
        if not ratio > 0:
            raise SFTDataError(f"ratio for {source!r} must be positive, got {ratio}")
    return items


def _split_ratio(item: str) -> tuple[str, float]:
    source, sep, tail = item.rpartition(":")
    if sep:
        try:
            return source, float(tail)
        except ValueError:
            pass
    return item, 1.0


def resolve_local(source: str) -> list[str] | None:
    """Data files for a local path, directory or glob; None if ``source`` does not look local (a hub name)."""
    if source.startswith("hf://"):  # may be a glob too, of files in the hub repo
        if hub_reference(source) is None:
            raise SFTDataError(f"{source}: expected hf://datasets/owner/name/path/to/file, or owner/name")
        return None
    path = Path(source).expanduser()
    if path.is_file():
        return [str(path)]
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
        if not files:
            raise SFTDataError(f"{source}: directory has no {'/'.join(DATA_SUFFIXES)} files")
        return files
    if glob.has_magic(source):
        files = sorted(p for p in glob.glob(os.path.expanduser(source), recursive=True) if os.path.isfile(p))
        if not files:
            raise SFTDataError(f"{source}: no files match")
        return files
    # A path whose first folder exists here is a mistyped local path, not a hub name.
    looks_local = source.startswith((".", "/", "~")) or "//" in source or Path(source.split("/")[0]).exists()
    if looks_local or hub_reference(source) is None:
        raise SFTDataError(f"{source}: no such file or directory")
    return None


def hub_reference(source: str) -> tuple[str, str | None] | None:
    """``(repo_id, file in the repo or None for the whole dataset)`` of a hub dataset source: ``owner/name``,
    ``owner/name/path/file.jsonl`` or ``hf://datasets/owner/name[@revision]/path/file``; None for any other shape."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    explicit = source.startswith("hf://datasets/")
    parts = source.removeprefix("hf://datasets/").split("/")
    repo_id, file = "/".join(parts[:2]), "/".join(parts[2:]) or None
    if explicit:
        repo_id = repo_id.partition("@")[0]
        if file is None:
            return None
    elif source.lower().endswith(DATA_SUFFIXES) != (file is not None) or {"", ".", ".."} & set(parts[2:]):
        return None  # a data file needs owner/name/ before it; anything else below owner/name is no hub name
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        return None
    return (repo_id, file) if "/" in repo_id else None


def files_fingerprint(files: list[str]) -> str:
    """Content hash of data files (path, size and bytes), so edits invalidate the cache and touches don't."""
    digest = hashlib.blake2b(digest_size=16)
    for name in files:
        digest.update(f"\0{os.path.abspath(name)}\0{os.path.getsize(name)}\0".encode())
        with open(name, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()
