"""The shipped tokenizer, its chat template (checked against minimind-3's own), the recipe that builds it, and the
bundled demo data.

The template checks compare rendered strings with MiniMind's reference tokenizers from /work/shared/reference (or
$MINIMIND_REFERENCE_DIR); without them those tests skip.
"""

import importlib.util
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sft_testing import REFERENCE_DIR
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER_DIR = ROOT / "minimind_hf" / "tokenizer"
TEMPLATE_PATH = ROOT / "minimind_hf" / "chat_template.jinja"
DEMO_DIR = ROOT / "minimind_hf" / "demo_data"

SPECIAL_IDS = {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2, "<tts_text_bos_single>": 20}
TEXT_TOKEN_IDS = {"<tool_call>": 21, "</tool_call>": 22, "<tool_response>": 23, "</tool_response>": 24, "<think>": 25,
                  "</think>": 26, "<|buffer1|>": 27, "<|buffer9|>": 35}  # fmt: skip
PROPERTY = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def template_inputs(messages: list[dict]) -> tuple[list[dict], list | None]:
    """MiniMind record -> (messages, tools) for apply_chat_template: tool specs and calls are stored as JSON strings."""
    system = messages[0] if messages and messages[0]["role"] == "system" else {}
    tools = system.get("tools")
    tools = json.loads(tools) if isinstance(tools, str) else tools
    decoded = [{**m, "tool_calls": json.loads(m["tool_calls"])} if isinstance(m.get("tool_calls"), str) else m
               for m in messages]  # fmt: skip
    return decoded, tools


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(TOKENIZER_DIR)


@pytest.fixture(scope="module")
def reference3():
    if REFERENCE_DIR is None:
        pytest.skip("MiniMind reference tokenizers not found")
    return AutoTokenizer.from_pretrained(REFERENCE_DIR / "minimind3-tokenizer")


@pytest.fixture(scope="module")
def sft_records():
    return read_jsonl(DEMO_DIR / "sft.jsonl")


# ------------------------------------------------------------------ the shipped tokenizer


def test_shipped_tokenizer_ids_and_settings(tokenizer):
    assert len(tokenizer) == 6400
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token, tokenizer.unk_token) == (
        "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|endoftext|>")  # fmt: skip
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (1, 2, 0)
    assert tokenizer.model_max_length == 32768
    added = tokenizer.added_tokens_decoder
    assert sorted(added) == list(range(36))
    for content, token_id in SPECIAL_IDS.items():
        assert added[token_id].content == content and added[token_id].special
    for content, token_id in TEXT_TOKEN_IDS.items():
        assert added[token_id].content == content and not added[token_id].special
    assert tokenizer("你好")["input_ids"] == tokenizer.encode("你好", add_special_tokens=False)  # no automatic bos/eos
    assert (
        json.loads((TOKENIZER_DIR / "tokenizer_config.json").read_text())["tokenizer_class"]
        == "PreTrainedTokenizerFast"
    )
    # <think>/<tool_call> are text: they survive skip_special_tokens, the ChatML markers do not.
    ids = tokenizer.encode("<|im_start|><think>\nx\n</think><tool_call>{}</tool_call><|im_end|>")
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<think>\nx\n</think><tool_call>{}</tool_call>"


def test_added_tokens_match_minimind3(tokenizer, reference3):
    def flags(tok):
        return {i: (t.content, t.special, t.normalized, t.lstrip, t.rstrip, t.single_word)
                for i, t in tok.added_tokens_decoder.items()}  # fmt: skip

    assert flags(tokenizer) == flags(reference3)
    assert sorted(tokenizer.all_special_ids) == sorted(reference3.all_special_ids) == list(range(21))


@pytest.mark.parametrize(
    "text",
    [
        "你好，世界！今天天气很好。",
        "The quick brown fox jumps over the lazy dog.",
        "emoji 😀🎉👍🏽 and 家庭 👨‍👩‍👧",
        'def f(x):\n\treturn {"k": x ** 2}  # comment\n\n',
        "  leading and trailing spaces  \n\n\n",
        "Ünïcödé ß ñ ÅÆØ, русский, العربية, 日本語のテキスト",
        "<think>\n推理\n</think>\n\n<tool_call>\n{}\n</tool_call>",
    ],
)
def test_round_trip(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text)) == text


@PROPERTY
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=60))
def test_round_trip_any_text(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_single_template_source(tokenizer):
    source = TEMPLATE_PATH.read_text(encoding="utf-8")
    assert tokenizer.chat_template == source
    assert (TOKENIZER_DIR / "chat_template.jinja").read_text(encoding="utf-8") == source


def test_recipe_reproduces_shipped_tokenizer(tmp_path):
    recipe = load_module(ROOT / "recipes" / "train_tokenizer.py")
    recipe.main(DEMO_DIR, tmp_path, TEMPLATE_PATH)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (tmp_path / name).read_bytes() == (TOKENIZER_DIR / name).read_bytes(), name
    model = json.loads((tmp_path / "tokenizer.json").read_text())["model"]
    assert len(model["vocab"]) == 6400 and model["type"] == "BPE"


# ------------------------------------------------------------------ template: same text as minimind-3


def render(tok, messages, tools=None, **kwargs):
    return tok.apply_chat_template(messages, tools=tools, tokenize=False, **kwargs)


WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "天气",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip
HAND_WRITTEN = [
    [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！"}],
    [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"},
     {"role": "assistant", "content": "yo", "reasoning_content": "\nthink\n"}, {"role": "user", "content": "again"},
     {"role": "assistant", "content": "<think>\nold style\n</think>\n\nanswer"}],
    [{"role": "system", "content": "你是助手"}, {"role": "user", "content": "北京天气？"},
     {"role": "assistant", "content": "", "tool_calls": [
         {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "北京"}}},
         {"name": "get_weather", "arguments": "{\"city\": \"上海\"}"}]},
     {"role": "tool", "content": "晴"}, {"role": "tool", "content": "雨"}, {"role": "assistant", "content": "北京晴，上海雨。"}],
    [{"role": "user", "content": "q"}, {"role": "assistant", "content": None,
                                        "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}],
    [{"role": "user", "content": "a\n\nb"}, {"role": "assistant", "content": "\n\nlead</think>tail"}],
]  # fmt: skip


@pytest.mark.parametrize("messages", HAND_WRITTEN)
@pytest.mark.parametrize("tools", [None, [WEATHER_TOOL]])
@pytest.mark.parametrize(
    "gen", [{}, {"add_generation_prompt": True}, {"add_generation_prompt": True, "open_thinking": True}]
)
def test_template_matches_minimind3_hand_written(tokenizer, reference3, messages, tools, gen):
    assert render(tokenizer, messages, tools, **gen) == render(reference3, messages, tools, **gen)


def test_template_matches_minimind3_on_demo_data(tokenizer, reference3, sft_records):
    for record in sft_records:
        messages, tools = template_inputs(record["conversations"])
        assert render(tokenizer, messages, tools) == render(reference3, messages, tools)


PIECES = ["\n", "\n\n", " ", "你好", "世界，", "😀", "<think>", "</think>", "<tool_call>", "{}", "MiniMind"]
TEXT = st.lists(st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=6), st.sampled_from(PIECES)),
                max_size=5).map("".join)  # fmt: skip
NAME = st.from_regex(r"[a-z_]{1,10}", fullmatch=True)
ARGUMENTS = st.dictionaries(NAME, st.one_of(st.integers(), TEXT, st.booleans()), max_size=2)


@st.composite
def tool_specs(draw):
    names = draw(st.lists(NAME, min_size=1, max_size=2, unique=True))
    return [{"type": "function", "function": {"name": n, "description": draw(TEXT),
             "parameters": {"type": "object", "properties": {k: {"type": "string"} for k in draw(st.lists(NAME, max_size=2))}}}}
            for n in names]  # fmt: skip


@st.composite
def tool_call(draw):
    arguments = draw(ARGUMENTS)
    if draw(st.booleans()):
        arguments = json.dumps(arguments, ensure_ascii=False)
    call = {"name": draw(NAME), "arguments": arguments}
    return {"type": "function", "function": call} if draw(st.booleans()) else call


@st.composite
def conversations(draw):
    """A chat in a valid order: [system] (user, assistant [tool calls, tool results, assistant])+ [user]."""
    messages = [{"role": "system", "content": draw(TEXT)}] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": draw(TEXT)})
        if draw(st.integers(0, 3)) == 0:
            calls = draw(st.lists(tool_call(), min_size=1, max_size=2))
            messages.append(
                {"role": "assistant", "content": draw(st.sampled_from(["", None]) | TEXT), "tool_calls": calls}
            )
            messages += [{"role": "tool", "content": draw(TEXT)} for _ in range(draw(st.integers(1, 2)))]
        reply = {"role": "assistant", "content": draw(TEXT)}
        if draw(st.booleans()):
            reply["reasoning_content"] = draw(TEXT)
        messages.append(reply)
    if draw(st.booleans()):
        messages.append({"role": "user", "content": draw(TEXT)})
    return messages


@PROPERTY
@given(
    messages=conversations(),
    tools=st.none() | tool_specs(),
    gen=st.booleans(),
    open_thinking=st.sampled_from([None, True, False]),
)
def test_template_matches_minimind3_property(tokenizer, reference3, messages, tools, gen, open_thinking):
    kwargs = {"add_generation_prompt": gen} | ({} if open_thinking is None else {"open_thinking": open_thinking})
    assert render(tokenizer, messages, tools, **kwargs) == render(reference3, messages, tools, **kwargs)


# ------------------------------------------------------------------ template: the assistant mask


def minimind_rule(ids: list[int], tokenizer) -> list[int]:
    """MiniMind's labelling: supervise from after each `<|im_start|>assistant\\n` through the next `<|im_end|>\\n`."""
    opener = tokenizer.encode("<|im_start|>assistant\n")
    closer = tokenizer.encode("<|im_end|>\n")
    mask, i = [0] * len(ids), 0
    while i < len(ids):
        if ids[i : i + len(opener)] != opener:
            i += 1
            continue
        start = end = i + len(opener)
        while end < len(ids) and ids[end : end + len(closer)] != closer:
            end += 1
        mask[start : end + len(closer)] = [1] * (min(end + len(closer), len(ids)) - start)
        i = end + len(closer)
    return mask


def assistant_spans(text: str) -> list[str]:
    """Each assistant turn as rendered, from after its header through its closing `<|im_end|>\\n`."""
    return re.findall(r"<\|im_start\|>assistant\n(.*?<\|im_end\|>\n)", text, flags=re.DOTALL)


def check_mask(tokenizer, messages, tools=None):
    out = tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = out["input_ids"], out["assistant_masks"]
    text = render(tokenizer, messages, tools)
    runs, current = [], []
    for token_id, marked in zip(ids, mask, strict=True):
        if marked:
            current.append(token_id)
        elif current:
            runs.append(current)
            current = []
    runs += [current] if current else []
    assert [tokenizer.decode(run) for run in runs] == assistant_spans(text)
    assert len(runs) == sum(m["role"] == "assistant" for m in messages)
    assert tokenizer.decode(ids) == text
    assert mask == minimind_rule(ids, tokenizer)


def test_assistant_mask_hand_written(tokenizer):
    for messages in HAND_WRITTEN:
        check_mask(tokenizer, messages)
        check_mask(tokenizer, messages, [WEATHER_TOOL])


def test_assistant_mask_demo_data(tokenizer, sft_records):
    for record in sft_records:
        check_mask(tokenizer, *template_inputs(record["conversations"]))


@PROPERTY
@given(messages=conversations(), tools=st.none() | tool_specs())
def test_assistant_mask_property(tokenizer, messages, tools):
    check_mask(tokenizer, messages, tools)


def test_generation_prompt_is_not_supervised(tokenizer):
    messages = [
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": "你好！"},
        {"role": "user", "content": "hi"},
    ]
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)  # fmt: skip
    marked = [t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(marked) == "<think>\n\n</think>\n\n你好！<|im_end|>\n"
    assert render(tokenizer, messages, add_generation_prompt=True).endswith(
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    assert render(tokenizer, messages, add_generation_prompt=True, open_thinking=True).endswith("assistant\n<think>\n")


# ------------------------------------------------------------------ demo data

ROLES = {"system", "user", "assistant", "tool"}
CJK = re.compile(r"[\u4e00-\u9fff]")
NUMBER = r"-?\d+(?:\.\d+)?(?:/\d+)?"
EXPRESSION = rf"{NUMBER}(?: [-+×÷] {NUMBER})*"
CHAIN = re.compile(rf"(?<![\d.])({EXPRESSION}(?: = {EXPRESSION})+)(?: (?:余|remainder) (\d+))?")


def check_conversation(messages: list[dict]):
    """Structural rules every SFT record follows; returns the declared tool names."""
    assert messages and all(m["role"] in ROLES and isinstance(m["content"], str) for m in messages)
    assert all(m["role"] != "system" for m in messages[1:]), "system only opens a conversation"
    body = messages[1:] if messages[0]["role"] == "system" else messages
    assert body[0]["role"] == "user" and body[-1]["role"] == "assistant" and not body[-1].get("tool_calls")
    assert 1 <= sum(m["role"] == "user" for m in body) <= 3
    tools = json.loads(messages[0].get("tools") or "[]")
    declared = {spec["function"]["name"] for spec in tools}
    assert all(spec["type"] == "function" and spec["function"]["parameters"]["type"] == "object" for spec in tools)
    for i, m in enumerate(body):
        assert "tools" not in m
        if "reasoning_content" in m:
            assert m["role"] == "assistant" and m["reasoning_content"].strip()
        if m.get("tool_calls"):
            calls = json.loads(m["tool_calls"])
            assert m["role"] == "assistant" and calls
            assert all(c["type"] == "function" and c["function"]["name"] in declared for c in calls)
            assert all(isinstance(c["function"]["arguments"], dict) for c in calls)
            results = body[i + 1 : i + 1 + len(calls)]
            assert [r["role"] for r in results] == ["tool"] * len(calls), "one tool result per call"
            after = body[i + 1 + len(calls)]
            assert after["role"] == "assistant" and not after.get("tool_calls")
            for result in results:  # the answer reports every number the tools returned
                numbers = [v for v in json.loads(result["content"]).values() if isinstance(v, (int, float))]
                assert all(f"{v:g}" in after["content"] for v in numbers), (result, after)
        elif m["role"] == "tool":
            assert body[i - 1]["role"] == "tool" or body[i - 1].get("tool_calls")
        elif i > 0:
            assert body[i - 1]["role"] != m["role"], "user and assistant alternate"
    return declared


def check_arithmetic(text: str):
    """Every worked equation in `text` ("12 + 7 = 19", "27 ÷ 7 = 3 余 6", "3 加 4 等于 7") holds."""
    for word, symbol in ((" 加 ", " + "), (" 等于 ", " = "), (" plus ", " + "), (" equals ", " = ")):
        text = text.replace(word, symbol)
    for match in CHAIN.finditer(text):
        # EXPRESSION admits only numbers and + - × ÷ between spaces, so eval sees plain arithmetic.
        sides = [eval(side.replace("×", "*").replace("÷", "/")) for side in match.group(1).split(" = ")]
        if match.group(2):  # "27 ÷ 7 = 3 余 6": quotient and remainder
            dividend, divisor = (int(x) for x in match.group(1).split(" = ")[0].split(" ÷ "))
            assert divmod(dividend, divisor) == (sides[1], int(match.group(2))), match.group(0)
        else:
            assert all(abs(s - sides[0]) < 1e-9 for s in sides), match.group(0)


def test_sft_demo_data(sft_records, tokenizer):
    assert 300 <= len(sft_records) <= 500
    kinds = {"system": 0, "tools": 0, "reasoning": 0, "multi_turn": 0, "chinese": 0}
    for record in sft_records:
        messages = record["conversations"]
        declared = check_conversation(messages)
        kinds["system"] += messages[0]["role"] == "system"
        kinds["tools"] += bool(declared)
        kinds["reasoning"] += any("reasoning_content" in m for m in messages)
        kinds["multi_turn"] += sum(m["role"] == "user" for m in messages) > 1
        kinds["chinese"] += bool(CJK.search(" ".join(m["content"] for m in messages if m["role"] == "user")))
        for m in messages:
            check_arithmetic(m["content"] + "\n" + m.get("reasoning_content", ""))
        text = render(tokenizer, *template_inputs(messages))
        assert all(m["content"] in text for m in messages)
    assert min(kinds["system"], kinds["tools"], kinds["reasoning"], kinds["multi_turn"]) >= 20, kinds
    assert 0.5 <= kinds["chinese"] / len(sft_records) <= 0.7, kinds  # bilingual, roughly 60/40


def test_arithmetic_checker_catches_mistakes():
    check_arithmetic("12 + 7 = 19。6 × 2 + 4 × 4 = 12 + 16 = 28。27 ÷ 7 = 3 余 6。10 × 9/5 + 32 = 50")
    check_arithmetic("90 加 13 等于 103。5 plus 6 equals 11.")
    for wrong in [
        "12 + 7 = 20",
        "90 加 13 等于 104",
        "5 plus 6 equals 12",
        "6 × 2 + 4 × 4 = 12 + 16 = 29",
        "27 ÷ 7 = 3 余 5",
        "-10 × 9/5 + 32 = 15",
    ]:
        with pytest.raises(AssertionError):
            check_arithmetic(wrong)


def test_pretrain_and_prompts(sft_records):
    lines = read_jsonl(DEMO_DIR / "pretrain.jsonl")
    assert len(lines) >= 200
    assert all(set(row) == {"text"} and 0 < len(row["text"]) < 512 for row in lines)
    assert 0.4 <= sum(bool(CJK.search(row["text"])) for row in lines) / len(lines) <= 0.7
    for row in lines:
        check_arithmetic(row["text"])
    prompts = read_jsonl(DEMO_DIR / "prompts.jsonl")
    assert 6 <= len(prompts) <= 12
    single_turns = {
        (c[0]["content"], c[1]["content"]) for c in (r["conversations"] for r in sft_records) if len(c) == 2
    }
    asked = {m["content"] for r in sft_records for m in r["conversations"] if m["role"] == "user"}
    for row in prompts:  # each says whether training saw it, and says so truly
        assert set(row) == {"prompt", "reference", "seen"}
        if row["seen"]:
            assert (row["prompt"], row["reference"]) in single_turns
        else:
            assert row["prompt"] not in asked
    assert sum(row["seen"] for row in prompts) >= 6 and sum(not row["seen"] for row in prompts) >= 3


@pytest.fixture
def make_demo_data(monkeypatch):
    """recipes/make_demo_data.py, importing its recipes/demo_data/ package as `python recipes/make_demo_data.py` does."""
    monkeypatch.syspath_prepend(str(ROOT / "recipes"))
    return load_module(ROOT / "recipes" / "make_demo_data.py")


def test_demo_data_generator_reproduces_files(tmp_path, make_demo_data):
    """The shipped files are exactly what the content tables (recipes/demo_data/content/*.yaml) generate."""
    make_demo_data.main(tmp_path)
    for name in ("sft.jsonl", "pretrain.jsonl", "prompts.jsonl"):
        assert (tmp_path / name).read_bytes() == (DEMO_DIR / name).read_bytes(), name


def test_demo_prompts_are_checked_against_the_sft_set(make_demo_data):
    convs = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
             for q, a in [("Hi", "Hello!"), ("2 + 2?", "4"), ("2 + 2?", "four")]]  # fmt: skip
    rows = make_demo_data.build_prompts(convs, {"seen": ["Hi"], "held_out": [{"prompt": "New?", "reference": "Yes."}]})
    assert rows == [{"prompt": "Hi", "reference": "Hello!", "seen": True},
                    {"prompt": "New?", "reference": "Yes.", "seen": False}]  # fmt: skip
    with pytest.raises(ValueError, match="seen prompt 'Bye' has 0 single-turn answers"):
        make_demo_data.build_prompts(convs, {"seen": ["Bye"], "held_out": []})
    with pytest.raises(ValueError, match="seen prompt '2 \\+ 2\\?' has 2 single-turn answers"):
        make_demo_data.build_prompts(convs, {"seen": ["2 + 2?"], "held_out": []})
    with pytest.raises(ValueError, match="held-out prompt 'Hi' is asked in the SFT set"):
        make_demo_data.build_prompts(convs, {"seen": [], "held_out": [{"prompt": "Hi", "reference": "Hello!"}]})


# ------------------------------------------------------------------ the reference tokenizers others rely on


@pytest.mark.parametrize("name", ["minimind2-tokenizer", "minimind3-tokenizer"])
def test_reference_tokenizers_load_and_render(name):
    if REFERENCE_DIR is None:
        pytest.skip("MiniMind reference tokenizers not found")
    tok = AutoTokenizer.from_pretrained(REFERENCE_DIR / name)
    assert len(tok) == 6400 and (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    text = render(tok, [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！"}])
    turns = "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n"
    if name == "minimind2-tokenizer":  # MiniMind2 injects a default system prompt
        assert text == "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n" + turns + "你好！<|im_end|>\n"
    else:  # minimind-3 renders an empty think block in every assistant turn
        assert text == turns + "<think>\n\n</think>\n\n你好！<|im_end|>\n"


# ------------------------------------------------------------------ prompt boundary: inference context == training


BOUNDARY_CASES = [
    *HAND_WRITTEN,
    [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "\tcode:\n    indented", "reasoning_content": " r "},
    ],
]
# An answer opening with two spaces: MiniMind-3's "\n\n  " token then spans the prompt's end. Its training ids stay
# MiniMind's (the whole text tokenized at once), so only the bundled tokenizer agrees there.
LEADING_SPACES = [{"role": "user", "content": "缩进"}, {"role": "assistant", "content": "  two spaces\n\n\nnewlines"}]


@pytest.mark.parametrize("name", ["bundled", "minimind2", "minimind3"])
def test_generation_prompt_is_the_training_prefix(name, sft_records):
    """For every assistant turn, the ids training puts before it are the plain tokenization of
    apply_chat_template(messages_before, add_generation_prompt=True): the context vLLM, llama.cpp or generate give
    the model. The bundled tokenizer needs `newline_alone` for it (before it, 1031 of 1155 demo boundaries differed:
    "</think>\\n\\n" ended in one "\\n\\n" token alone, in two "\\n" in training); MiniMind's agree as they are."""
    from minimind_hf.formats import normalize_messages
    from minimind_hf.masking import tokenize_conversation

    if name == "bundled":
        tok = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    elif REFERENCE_DIR is None:
        pytest.skip("MiniMind reference tokenizers not found")
    else:
        tok = AutoTokenizer.from_pretrained(REFERENCE_DIR / f"{name}-tokenizer")
    checked = 0
    cases = [r["conversations"] for r in sft_records[::4]] + BOUNDARY_CASES + [LEADING_SPACES] * (name == "bundled")
    for conversation in cases:
        messages, tools = normalize_messages(conversation, None)
        messages = json.loads(json.dumps(messages))
        for keep_empty_think in (1.0, 0.0):
            ids = tokenize_conversation(conversation, tok, system_prompt_ratio=0.0, empty_think_ratio=keep_empty_think)
            ids = ids["input_ids"]
            text = tok.decode(ids)
            for turn, message in enumerate(messages):
                for think in (False, True) if message["role"] == "assistant" else ():
                    prompt = render(tok, messages[:turn], tools, add_generation_prompt=True, open_thinking=think)
                    if text.startswith(prompt):  # else this sample's augmentation renders the turn differently
                        prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
                        assert ids[: len(prompt_ids)] == prompt_ids, (name, prompt[-40:])
                        checked += 1
    assert checked > 150


def test_no_token_holds_a_newline_with_more(tokenizer):
    vocab = json.loads((TOKENIZER_DIR / "tokenizer.json").read_text(encoding="utf-8"))["model"]
    assert not [pair for pair in vocab["merges"] if "\u010a" in "".join(pair)]
    assert (
        tokenizer("</think>\n\n", add_special_tokens=False)["input_ids"][1:]
        == [tokenizer.convert_tokens_to_ids("\u010a")] * 2
    )
    assert vocab["vocab"]["\u010a\u010a"] == 331  # kept: ids do not move, so models trained before still load
